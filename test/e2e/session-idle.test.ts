import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE_UPSTREAM, waitFor } from '../helpers/gateway-harness.ts';
import { startProcess, writeStartConfig, type StartedProcess } from '../helpers/start-process.ts';

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'idle', version: '1' } } };

// listen.sessionIdleTimeout, as `gatehouse start` reads it: an idle 2025 session ends, and its client is told so.
describe('listen.sessionIdleTimeout', () => {
  let started: StartedProcess | undefined;
  afterAll(async () => {
    await started?.stop();
  });

  it('ends a session that sent nothing for that long: its next request gets 404 GH_ERR_SESSION_NOT_FOUND', async () => {
    const { dir, config } = writeStartConfig({ upstream: 'fx', script: FIXTURE_UPSTREAM });
    writeFileSync(config, readFileSync(config, 'utf8').replace('listen: { http: "127.0.0.1:0" }', 'listen: { http: "127.0.0.1:0", sessionIdleTimeout: 1s }'));
    started = await startProcess(config, dir);
    const opened = await fetch(started.url, { method: 'POST', headers: HEADERS, body: JSON.stringify(INITIALIZE) });
    expect(opened.status).toBe(200);
    const session = opened.headers.get('mcp-session-id')!;
    await opened.body?.cancel();
    const list = () => fetch(started!.url, { method: 'POST', headers: { ...HEADERS, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) });
    let answer: Response | undefined;
    await waitFor(async () => {
      answer = await list();
      if (answer.status === 404) return true;
      await answer.body?.cancel();
      // Each request is activity: wait out more than the timeout before asking again.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      return false;
    }, 'the idle session to end', 30_000);
    expect(((await answer!.json()) as { error?: { data?: { code?: string } } }).error?.data?.code).toBe('GH_ERR_SESSION_NOT_FOUND');
  });
});
