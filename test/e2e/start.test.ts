import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectHttp, ROOT } from '../helpers/gateway-harness.ts';
import { GATEHOUSE_BIN } from '../helpers/cli.ts';

describe('gatehouse start', () => {
  it('serves the demo over HTTP and prints how to connect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-start-'));
    const config = join(dir, 'gatehouse.yaml');
    writeFileSync(
      config,
      [
        'listen: { http: "127.0.0.1:0" }',
        'dataDir: data',
        'upstreams:',
        `  notes: { command: ${JSON.stringify(process.execPath)}, args: ["--import", "tsx", ${JSON.stringify(join(ROOT, 'examples/demo/server.ts'))}], cwd: ${JSON.stringify(ROOT)} }`,
        `policies: [${JSON.stringify(join(ROOT, 'policies/default.yaml'))}]`,
        'log: { level: warn }',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [GATEHOUSE_BIN, 'start', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      const until = Date.now() + 20_000;
      while (!/MCP endpoint \(Streamable HTTP\): (\S+)/.test(out) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      const url = /MCP endpoint \(Streamable HTTP\): (\S+)/.exec(out)![1];
      expect(out).toContain('claude mcp add --transport http gatehouse');
      expect(out).toContain('@modelcontextprotocol/inspector');
      expect(out).toContain('claude_desktop_config.json');
      const client = await connectHttp(url);
      const names = (await client.listTools()).tools.map((t) => t.name).sort();
      expect(names).toEqual(['notes__read_note', 'notes__slow_count', 'notes__write_note']);
      const read = await client.callTool({ name: 'notes__read_note', arguments: { name: 'welcome' } });
      expect(JSON.stringify(read.content)).toContain('Hello from the Gatehouse demo');
      const write = await client.callTool({ name: 'notes__write_note', arguments: { name: 'x', body: 'y' } });
      expect(JSON.stringify(write.content)).toContain('GH_ERR_APPROVAL_PENDING');
      await client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
