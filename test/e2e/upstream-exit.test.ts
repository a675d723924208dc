import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { connectHttp, ROOT, waitFor } from '../helpers/gateway-harness.ts';
import { GATEHOUSE_BIN } from '../helpers/cli.ts';
import { startProcess, writeStartConfig } from '../helpers/start-process.ts';
import { StdioUpstream } from '../../adapters/mcp/stdio-upstream.ts';
import { silentLogger } from '../../src/log.ts';

/** A server that dies before it says a word on stdout, as one missing its settings does. */
const DIES_AT_START = "console.error('starting notes'); console.error('NOTES_DIR is not set'); process.exit(3)";

/**
 * A server that comes up (one tool, `burn`) and dies mid-call with a last word on stderr. Plain JSON-RPC, so the
 * test owns every byte it writes.
 */
const DIES_MID_CALL = `
const rl = require('node:readline').createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\\n');
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method === 'initialize') send({ id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'burner', version: '1' } } });
  else if (m.method === 'tools/list') send({ id: m.id, result: { tools: [{ name: 'burn', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } }] } });
  else if (m.method === 'tools/call') { process.stderr.write('disk on fire'); process.exit(4); }
  else if (m.id !== undefined) send({ id: m.id, error: { code: -32601, message: 'Method not found' } });
});`;

interface LogRecord {
  level: number;
  msg: string;
  upstream?: string;
  stderr?: string[];
}

const WARN = 40;

function records(output: string): LogRecord[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogRecord);
}

const errorMeta = (result: { _meta?: Record<string, unknown> }) => result._meta?.['gatehouse/error'] as Record<string, unknown> | undefined;

describe('an upstream that dies says why', () => {
  it('wrap: the last stderr lines of a server that exits at start are logged at warn, and its tools answer GH_ERR_UPSTREAM_UNAVAILABLE with them', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-exit-'));
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [GATEHOUSE_BIN, 'wrap', '--data-dir', dataDir, '--name', 'notes', '--', 'node', '-e', DIES_AT_START],
      cwd: ROOT,
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const client = new Client({ name: 'exit-test', version: '1' });
    await client.connect(transport);
    const result = await client.callTool({ name: 'notes__write_note', arguments: { name: 'a', body: 'b' } });
    expect(result.isError).toBe(true);
    expect(errorMeta(result)).toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE', upstream: 'notes', stderr: ['starting notes', 'NOTES_DIR is not set'] });
    await waitFor(() => records(stderr).some((r) => r.level === WARN && r.upstream === 'notes' && r.stderr?.includes('NOTES_DIR is not set')), 'the last stderr lines at warn');
    await client.close();
  });

  it('start: the banner says why an upstream is down, and a call to its tools says so too', async () => {
    const scriptDir = mkdtempSync(join(tmpdir(), 'gh-exit-script-'));
    const script = join(scriptDir, 'dies.ts');
    writeFileSync(script, DIES_AT_START);
    const { dir, config } = writeStartConfig({ upstream: 'notes', script });
    const started = await startProcess(config, dir);
    try {
      // The banner's upstream line carries the server's own last words.
      expect(started.output()).toMatch(/upstreams: notes \(down: .*NOTES_DIR is not set\)/);
      const client = await connectHttp(started.url);
      const result = await client.callTool({ name: 'notes__read_note', arguments: { name: 'x' } });
      expect(errorMeta(result)).toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE', upstream: 'notes', stderr: ['starting notes', 'NOTES_DIR is not set'] });
      await waitFor(() => records(started.output()).some((r) => r.level === WARN && r.upstream === 'notes' && r.stderr?.includes('NOTES_DIR is not set')), 'the last stderr lines at warn');
      // A name that is no upstream's is still an unknown tool.
      await expect(client.callTool({ name: 'nobody__read_note', arguments: {} })).rejects.toMatchObject({ code: -32602 });
      await client.close();
    } finally {
      await started.stop();
    }
  });

  it('a server that dies mid-call: the failed call carries its last stderr line, also without a trailing newline', async () => {
    const scriptDir = mkdtempSync(join(tmpdir(), 'gh-exit-script-'));
    const script = join(scriptDir, 'burner.cjs');
    writeFileSync(script, DIES_MID_CALL);
    const { dir, config } = writeStartConfig({ upstream: 'burner', script });
    const started = await startProcess(config, dir);
    try {
      const client = await connectHttp(started.url);
      const result = await client.callTool({ name: 'burner__burn', arguments: {} });
      expect(errorMeta(result)).toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE' });
      // The fixture's own last words, carried to the model as they were written.
      expect((result.content as { text: string }[])[0].text).toContain('disk on fire');
      await waitFor(() => records(started.output()).some((r) => r.level === WARN && r.upstream === 'burner' && r.stderr?.includes('disk on fire')), 'the last stderr line at warn');
      await client.close();
    } finally {
      await started.stop();
    }
  });

  it('a command that cannot be run at all: down, with a reason, and its requests answer GH_ERR_UPSTREAM_UNAVAILABLE', async () => {
    const upstream = new StdioUpstream('ghost', { command: 'no-such-command-for-gatehouse', args: [], env: {} }, silentLogger);
    await upstream.start({});
    try {
      expect(upstream.state).toBe('down');
      expect(upstream.failure?.message).toBeTruthy();
      await expect(upstream.request('tools/list', {})).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE', data: { upstream: 'ghost' } });
    } finally {
      await upstream.close();
    }
  });
});
