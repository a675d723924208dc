import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { ROOT, waitFor } from '../helpers/gateway-harness.ts';
import { GATEHOUSE_BIN } from '../helpers/cli.ts';

describe('gatehouse wrap without --', () => {
  it('takes the first word that is no option of its own as the server command, and says the name it derived', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-wrap-'));
    // As the MCP Inspector passes it: its own `--` stripped, the server's options (`--import`) after the command.
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [GATEHOUSE_BIN, 'wrap', '--data-dir', dataDir, 'node', '--import', 'tsx', 'examples/demo/server.ts'],
      cwd: ROOT,
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const client = new Client({ name: 'wrap-test', version: '1' });
    await client.connect(transport);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('demo__read_note');
    const said = () =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .some((line) => (JSON.parse(line) as { upstream?: string }).upstream === 'demo');
    await waitFor(said, 'wrap to say the upstream name it derived');
    await client.close();
  });
});
