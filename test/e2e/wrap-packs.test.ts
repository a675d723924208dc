import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { ROOT, waitFor } from '../helpers/gateway-harness.ts';
import { GATEHOUSE_BIN } from '../helpers/cli.ts';
import { desktopCommanderEnv } from '../helpers/desktop-commander.ts';

// `gatehouse wrap` as an MCP client's server entry starts it, over real stdio, in front of the real servers.

const FS_SERVER = join('node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');
const MEMORY_SERVER = join('node_modules', '@modelcontextprotocol', 'server-memory', 'dist', 'index.js');
const GITHUB_SERVER = join('node_modules', '@modelcontextprotocol', 'server-github', 'dist', 'index.js');

async function wrap(args: string[], env: Record<string, string> = {}): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [GATEHOUSE_BIN, 'wrap', ...args], cwd: ROOT, stderr: 'pipe', env: { ...(process.env as Record<string, string>), ...env } });
  let stderr = '';
  transport.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const client = new Client({ name: 'wrap-packs-test', version: '1' });
  await client.connect(transport);
  return { client, stderr: () => stderr };
}

type Result = { _meta?: Record<string, { code?: string; ruleIds?: string[] }> };
const code = (r: unknown) => (r as Result)._meta?.['gatehouse/error']?.code;

type Started = { args: string[]; env?: Record<string, string>; workspace?: string };
/** Each bundled pack that wrap picks by itself, with a server command that fits it and calls it decides. */
const AUTO: Array<{ pack: string; server: () => Started; check: (client: Client, started: Started) => Promise<void> }> = [
  {
    pack: 'filesystem',
    server: () => {
      const workspace = mkdtempSync(join(tmpdir(), 'gh-wrap-fs-'));
      writeFileSync(join(workspace, 'a.md'), 'inside');
      return { args: ['node', FS_SERVER, workspace], workspace };
    },
    check: async (client, { workspace: dir }) => {
      const read = (await client.callTool({ name: 'filesystem__read_text_file', arguments: { path: join(dir!, 'a.md') } })) as Result;
      expect(read._meta?.['gatehouse/job']?.ruleIds).toContain('filesystem/inside-workspace');
      expect(code(await client.callTool({ name: 'filesystem__read_text_file', arguments: { path: `${dir}/../../etc/passwd` } }))).toBe('GH_ERR_PATH_DENIED');
    },
  },
  {
    pack: 'shell',
    server: () => {
      const dc = desktopCommanderEnv();
      return { args: ['node', ...dc.args], env: dc.env };
    },
    check: async (client) => {
      expect(code(await client.callTool({ name: 'desktop-commander__start_process', arguments: { command: 'sudo rm -rf /', timeout_ms: 5000 } }))).toBe('GH_ERR_POLICY_DENIED');
      expect(code(await client.callTool({ name: 'desktop-commander__start_process', arguments: { command: 'ls', timeout_ms: 5000 } }))).toBe('GH_ERR_APPROVAL_PENDING');
    },
  },
  {
    pack: 'github',
    server: () => ({ args: ['node', GITHUB_SERVER], env: { GITHUB_PERSONAL_ACCESS_TOKEN: 'not-a-token' } }),
    check: async (client) => {
      const push = await client.callTool({ name: 'github__push_files', arguments: { owner: 'o', repo: 'r', branch: 'main', message: 'm', files: [{ path: 'a', content: 'b' }] } });
      expect(code(push)).toBe('GH_ERR_APPROVAL_PENDING');
    },
  },
];

describe('gatehouse wrap with packs', () => {
  it.each(AUTO)('applies the one bundled pack that fits the server by itself ($pack), reading what its command states, and says so', async ({ pack, server, check }) => {
    const started = server();
    const { client, stderr } = await wrap(['--data-dir', mkdtempSync(join(tmpdir(), 'gh-wrap-data-')), ...started.args], started.env);
    await waitFor(() => stderr().includes(`applying the bundled ${pack} pack`), 'wrap to say which pack it applied');
    await check(client, started);
    await client.close();
  });

  it('applies none with --no-pack', async () => {
    const workspace = mkdtempSync(join(tmpdir(), 'gh-wrap-fs-'));
    const { client, stderr } = await wrap(['--no-pack', '--data-dir', mkdtempSync(join(tmpdir(), 'gh-wrap-data-')), 'node', FS_SERVER, workspace]);
    const read = (await client.callTool({ name: 'filesystem__list_allowed_directories', arguments: {} })) as Result;
    expect(read._meta?.['gatehouse/job']?.ruleIds?.some((id) => id.startsWith('filesystem/'))).toBe(false);
    expect(stderr()).not.toContain('applying the bundled');
    await client.close();
  });

  it("applies the one bundled pack whose match names the server's serverInfo, when its command names no package", async () => {
    // The memory server behind a script name that says nothing: only its initialize answer (memory-server) tells.
    const dir = mkdtempSync(join(tmpdir(), 'gh-wrap-kg-'));
    symlinkSync(join(ROOT, MEMORY_SERVER), join(dir, 'kg.js'));
    const { client, stderr } = await wrap(['--data-dir', dir, 'node', join(dir, 'kg.js')], { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') });
    await waitFor(() => stderr().includes('applying the bundled memory pack'), 'wrap to say which pack it applied');
    expect(stderr()).toContain('which fits by its serverInfo name, memory-server');
    const deleted = (await client.callTool({ name: 'kg__delete_entities', arguments: { entityNames: ['x'] } })) as Result;
    expect(code(deleted)).toBe('GH_ERR_APPROVAL_PENDING');
    expect(deleted._meta?.['gatehouse/error']).toBeDefined();
    await client.close();
  });

  it('looks at the running server only when its command fitted no pack: --no-pack applies none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-wrap-kg-'));
    symlinkSync(join(ROOT, MEMORY_SERVER), join(dir, 'kg.js'));
    const { client, stderr } = await wrap(['--no-pack', '--data-dir', dir, 'node', join(dir, 'kg.js')], { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') });
    const read = (await client.callTool({ name: 'kg__read_graph', arguments: {} })) as Result;
    expect(read._meta?.['gatehouse/job']?.ruleIds?.some((id) => id.startsWith('memory/'))).toBe(false);
    expect(stderr()).not.toContain('applying the bundled');
    await client.close();
  });

  it('applies the pack --pack names, with --set parameters', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-wrap-mem-'));
    const { client } = await wrap(['--pack', 'memory', '--set', 'deletes=deny', '--data-dir', dir, 'node', MEMORY_SERVER], { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') });
    const deleted = (await client.callTool({ name: 'memory__delete_entities', arguments: { entityNames: ['x'] } })) as Result;
    expect(code(deleted)).toBe('GH_ERR_POLICY_DENIED');
    expect(deleted._meta?.['gatehouse/error']).toBeDefined();
    await client.close();
  });

  it('applies the shell pack --pack names: ls waits for a human (above) until --set allowCommands names it', async () => {
    const dc = desktopCommanderEnv();
    // The default policy holds every tool marked destructive, start_process included: the example's pack-only base leaves it to the pack.
    const { client } = await wrap(['--policy', join(ROOT, 'examples', 'packs', 'shell', 'pack-only.yaml'), '--pack', 'shell', '--set', 'allowCommands=ls', '--data-dir', mkdtempSync(join(tmpdir(), 'gh-wrap-data-')), '--', 'node', ...dc.args], dc.env);
    const ran = (await client.callTool({ name: 'desktop-commander__start_process', arguments: { command: 'ls', timeout_ms: 10_000 } })) as Result;
    expect(code(ran)).toBeUndefined();
    expect(ran._meta?.['gatehouse/job']?.ruleIds).toContain('shell/allowed-commands');
    expect(code(await client.callTool({ name: 'desktop-commander__start_process', arguments: { command: 'ls; rm -rf /', timeout_ms: 5000 } }))).toBe('GH_ERR_POLICY_DENIED');
    await client.close();
  });
});
