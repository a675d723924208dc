import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/load.ts';
import { request } from 'undici';
import * as z from 'zod';
import { connectHttp, FIXTURE_UPSTREAM, ROOT, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse, GATEHOUSE_BIN } from '../helpers/cli.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ limits: { ...defaultConfig().limits, maxMessageBytes: 64 * 1024, maxAuditBacklog: 100_000 } });
});
afterAll(async () => {
  await h?.close();
});

async function post(body: string, headers: Record<string, string> = {}) {
  const response = await request(h.url, { method: 'POST', body, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } });
  const text = await response.body.text();
  return { status: response.statusCode, json: text ? JSON.parse(text) : undefined };
}

describe('bad input over HTTP', () => {
  it('answers invalid JSON with -32700 and stays up', async () => {
    expect(await post('{"jsonrpc": "2.0", "id": 1,')).toMatchObject({ status: 400, json: { error: { code: -32700, data: { code: 'GH_ERR_PARSE' } } } });
  });

  it('answers a message that is not JSON-RPC with -32600', async () => {
    expect(await post('{"hello": "world"}')).toMatchObject({ status: 400, json: { error: { code: -32600 } } });
  });

  it('refuses an oversized body with 413', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(100 * 1024) } });
    expect(await post(big)).toMatchObject({ status: 413, json: { error: { data: { code: 'GH_ERR_BODY_TOO_LARGE' } } } });
  });

  it('refuses a foreign Origin or Host (DNS rebinding)', async () => {
    expect((await post('{}', { origin: 'http://evil.example.com' })).status).toBe(403);
    expect((await post('{}', { host: 'evil.example.com' })).status).toBe(403);
  });

  it('asks for a session, and reports an unknown one with 404', async () => {
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    expect((await post(ping)).status).toBe(400);
    expect(await post(ping, { 'mcp-session-id': 'nope' })).toMatchObject({ status: 404, json: { error: { code: -32001 } } });
  });

  it('answers unknown methods, unknown tools and invalid arguments with clear, coded errors', async () => {
    const client = await connectHttp(h.url);
    await expect(client.request({ method: 'tools/teleport', params: {} } as never, z.object({}) as never)).rejects.toMatchObject({ code: -32601 });
    await expect(client.callTool({ name: 'fx__nope', arguments: {} })).rejects.toMatchObject({ code: -32602 });
    const invalid = await client.callTool({ name: 'fx__echo', arguments: { text: 42 } });
    expect(invalid.isError).toBe(true);
    expect((invalid.content as { text: string }[])[0].text).toContain('GH_ERR_INVALID_ARGUMENTS');
    expect((invalid.content as { text: string }[])[0].text).toContain('text: must be string');
    await client.close();
  });

  it('requires an API key when keys are configured', async () => {
    const secured = await startHarness({ auth: { apiKeys: [{ key: 'k'.repeat(32), principal: 'alice', tenant: 'acme', roles: [] }] } });
    try {
      const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
      const noKey = await request(secured.url, { method: 'POST', body: init, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } });
      expect(noKey.statusCode).toBe(401);
      await noKey.body.dump();
      // The route decides, not the raw URL: an encoded path that routes to /mcp needs the key too.
      const encoded = await request(secured.url.replace('/mcp', '/%6Dcp'), { method: 'POST', body: init, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } });
      expect(encoded.statusCode).toBe(401);
      await encoded.body.dump();
      const health = await request(secured.url.replace('/mcp', '/healthz'));
      expect(health.statusCode).toBe(401);
      await health.body.dump();
      const withKey = await request(secured.url, { method: 'POST', body: init, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${'k'.repeat(32)}` } });
      expect(withKey.statusCode).toBe(200);
      await withKey.body.dump();
    } finally {
      await secured.close();
    }
  });
});

describe('bad input over stdio', () => {
  it('answers broken lines with JSON-RPC errors and keeps serving', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-stdio-'));
    const child = spawn(process.execPath, [GATEHOUSE_BIN, 'wrap', '--data-dir', dataDir, '--name', 'fx', '--', process.execPath, '--import', 'tsx', FIXTURE_UPSTREAM], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout! });
    const replies: unknown[] = [];
    lines.on('line', (l) => replies.push(JSON.parse(l)));
    const next = async (count: number) => {
      const until = Date.now() + 20_000;
      while (replies.length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      return replies[count - 1] as Record<string, any>;
    };
    child.stdin!.write('this is not json\n');
    expect(await next(1)).toMatchObject({ id: null, error: { code: -32700 } });
    child.stdin!.write('{"jsonrpc":"2.0","id":7}\n');
    expect(await next(2)).toMatchObject({ id: 7, error: { code: -32600 } });
    child.stdin!.write(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) + '\n');
    expect(await next(3)).toMatchObject({ id: 8, result: { protocolVersion: '2025-11-25' } });
    child.stdin!.write(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'no/such' }) + '\n');
    expect(await next(4)).toMatchObject({ id: 9, error: { code: -32601 } });
    child.stdin!.write(JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'fx__nope', arguments: {} } }) + '\n');
    expect(await next(5)).toMatchObject({ id: 10, error: { code: -32602, data: { code: 'GH_ERR_UNKNOWN_TOOL' } } });
    child.stdin!.write(JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 5 } } }) + '\n');
    expect(await next(6)).toMatchObject({ id: 11, result: { isError: true, _meta: { 'gatehouse/error': { code: 'GH_ERR_INVALID_ARGUMENTS' } } } });
    child.stdin!.write(JSON.stringify({ jsonrpc: '2.0', id: 12, method: 'ping', params: { pad: 'x'.repeat(5 * 1024 * 1024) } }) + '\n');
    // Answered by its id, read from the head of the skipped line.
    expect(await next(7)).toMatchObject({ id: 12, error: { data: { code: 'GH_ERR_BODY_TOO_LARGE' } } });
    child.stdin!.write(JSON.stringify({ jsonrpc: '2.0', id: 13, method: 'ping' }) + '\n');
    expect(await next(8)).toMatchObject({ id: 13, result: {} });
    child.kill();
  });
});

describe('bad files', () => {
  it('refuses to start on a config typo, naming the file, line and key (exit 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cfg-'));
    writeFileSync(join(dir, 'gatehouse.yaml'), 'listen: { http: "127.0.0.1:0" }\nupstreams:\n  x: { comand: echo }\n');
    const result = await gatehouse(['start', '--config', join(dir, 'gatehouse.yaml')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('gatehouse.yaml:3: upstreams.x');
    expect(result.stderr).toContain('GH_ERR_CONFIG_INVALID');
  });

  it('reads only the data dir from --config in state commands, so they need none of the gateway secrets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-state-'));
    writeFileSync(join(dir, 'gatehouse.yaml'), 'dataDir: state\nauth: { apiKeys: [{ key: "${env:GH_UNSET_KEY_FOR_TEST}", principal: a }] }\n');
    const result = await gatehouse(['approvals', 'list', '--config', join(dir, 'gatehouse.yaml')]);
    expect(result).toMatchObject({ code: 0, stdout: 'no pending approvals\n' });
  });

  it('reports a torn audit tail as a torn write, not as a broken chain (the next write repairs it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-torn-'));
    mkdirSync(join(dir, 'audit'));
    writeFileSync(join(dir, 'audit', 'default.jsonl'), '{"seq":1,"tenant":"default"');
    const result = await gatehouse(['audit', 'verify', '--data-dir', dir]);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('GH_ERR_AUDIT_BROKEN');
    expect(result.stdout).toContain('torn');
  });

  it('reports a corrupted approval file instead of losing it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-data-'));
    mkdirSync(join(dir, 'approvals'));
    writeFileSync(join(dir, 'approvals', 'apr_X.json'), '{"id": "apr_X", "sta');
    const result = await gatehouse(['approvals', 'list', '--data-dir', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('GH_ERR_DATA_CORRUPT');
    expect(result.stderr).toContain('apr_X.json');
  });

  it('uses exit code 2 for bad usage and 0 for --help', async () => {
    expect((await gatehouse(['approvals', 'frobnicate', '--data-dir', '/tmp'])).code).toBe(2);
    expect((await gatehouse(['audit', 'tail', '--bogus'])).code).toBe(2);
    expect((await gatehouse(['nope'])).code).toBe(2);
    for (const command of ['start', 'wrap', 'approvals', 'audit', 'policy']) expect((await gatehouse([command, '--help'])).code).toBe(0);
  });

  it('checks policy files and prints the snapshot', async () => {
    const ok = await gatehouse(['policy', 'check', join(ROOT, 'policies/default.yaml')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/snapshot sha256:[0-9a-f]{64}/);
    const dir = mkdtempSync(join(tmpdir(), 'gh-pol-'));
    writeFileSync(join(dir, 'bad.yaml'), 'version: 1\nrules:\n  - { id: a, effect: perhaps }\n');
    const bad = await gatehouse(['policy', 'check', join(dir, 'bad.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('bad.yaml:3');
  });
});
