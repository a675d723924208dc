import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { connectHttp, ROOT, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import { BUNDLED_PACKS } from '../../src/packs/places.ts';

// `gatehouse pack …` as a user runs it, in another process, against a running gateway's data dir: adding and
// removing a pack reloads the gateway's policy as a policy edit does, and a bad add changes nothing.

describe('gatehouse pack', () => {
  let h: Harness;
  const workspace = mkdtempSync(join(tmpdir(), 'gh-pack-cli-ws-'));
  beforeAll(async () => {
    h = await startHarness();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('lists the bundled packs and shows them', async () => {
    const list = await gatehouse(['pack', 'list', '--data-dir', h.dataDir, '--json']);
    expect(list.code).toBe(0);
    const names = (JSON.parse(list.stdout) as { packs: Array<{ name: string; source: string }> }).packs.map((p) => `${p.name}:${p.source}`);
    expect(names).toEqual(expect.arrayContaining(['filesystem:bundled', 'memory:bundled', 'shell:bundled', 'github:bundled']));
    const shows: Array<[pack: string, rule: string, param: string, tool: string]> = [
      ['filesystem', 'filesystem/changes-need-approval', 'workspace', 'move_file'],
      ['shell', 'shell/destructive-commands', 'allowCommands', 'start_process'],
      ['github', 'github/pushes-need-approval', 'writesPerHour', 'push_files'],
    ];
    for (const [pack, rule, param, tool] of shows) {
      const show = await gatehouse(['pack', 'show', pack, '--data-dir', h.dataDir, '--json']);
      expect(show.code).toBe(0);
      const shown = JSON.parse(show.stdout) as { rules: Array<{ id: string }>; params: Record<string, unknown>; tools: Array<{ name: string }> };
      expect(shown.rules.map((r) => r.id)).toContain(rule);
      expect(Object.keys(shown.params)).toContain(param);
      expect(shown.tools.map((t) => t.name)).toContain(tool);
    }
  });

  it("policy explain and test --config decide with the config's packs, their ${env:…} parameters filled in (and name one unset)", async () => {
    const config = join(ROOT, 'examples/packs/filesystem/gatehouse.yaml');
    const call = ['--call', JSON.stringify({ tool: 'filesystem__read_text_file', principal: 'alice', args: { path: join(workspace, 'a.txt') } }), '--json'];
    const explained = await gatehouse(['policy', 'explain', '--config', config, ...call], { env: { GATEHOUSE_WORKSPACE: workspace } });
    expect(explained.stderr).toBe('');
    expect(JSON.parse(explained.stdout)).toMatchObject({ decision: { ruleIds: expect.arrayContaining(['filesystem/inside-workspace']) } });
    expect(process.env.GATEHOUSE_WORKSPACE).toBeUndefined();
    const unset = await gatehouse(['policy', 'explain', '--config', config, ...call]);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain('GATEHOUSE_WORKSPACE');
  });

  it('runs the packs\' tests', async () => {
    const run = await gatehouse(['pack', 'test', '--data-dir', h.dataDir]);
    expect(run.code).toBe(0);
    for (const pack of ['filesystem', 'shell', 'github']) expect(run.stdout).toMatch(new RegExp(`${pack} 1\\.0\\.0\\n\\s+\\d+ cases in 1 file: \\d+ passed, 0 failed`));
  });

  it('adds a pack: the running gateway reloads with it; a bad add changes nothing; remove reloads without it', async () => {
    const before = h.gateway.kernel.snapshot;
    // A wrong parameter: refused with the file and line, nothing written, the gateway's policy as it was.
    const bad = await gatehouse(['pack', 'add', 'filesystem', '--data-dir', h.dataDir, '--set', 'maxReadBytes=lots', '--set', `workspace=${workspace}`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${join(BUNDLED_PACKS, 'filesystem', 'pack.yaml')}:`);
    expect(bad.stderr).toContain('GH_ERR_POLICY_INVALID');
    expect(h.gateway.kernel.snapshot).toBe(before);

    const added = await gatehouse(['pack', 'add', 'filesystem', '--data-dir', h.dataDir, '--upstream', 'fx', '--set', `workspace=${workspace}`, '--set', 'maxReadBytes=4096']);
    expect(added.code).toBe(0);
    expect(parse(readFileSync(join(h.dataDir, 'packs.yaml'), 'utf8'))).toEqual({ packs: [{ name: 'filesystem', upstream: 'fx', params: { workspace, maxReadBytes: 4096 } }] });
    // Checked against the tools the gateway recorded for fx (the fixture, no filesystem server): warned, not refused.
    expect(added.stderr).toMatch(/warning: fx lists \w+, which the filesystem pack does not know/);
    // …and against the serverInfo it recorded: the fixture is not the filesystem server.
    expect(added.stderr).toContain('warning: "fx" is not recognised as the server the filesystem pack is for (it calls itself gatehouse-test-upstream; the pack expects the serverInfo name secure-filesystem-server)');
    await waitFor(() => h.gateway.kernel.snapshot !== before, 'the gateway to reload with the pack');
    const client = await connectHttp(h.url);
    const result = (await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } })) as { _meta?: Record<string, { ruleIds?: string[] }> };
    expect(result._meta?.['gatehouse/job']?.ruleIds).toContain('filesystem/inside-workspace');
    await client.close();

    const removed = await gatehouse(['pack', 'remove', 'filesystem', '--data-dir', h.dataDir]);
    expect(removed.code).toBe(0);
    await waitFor(() => h.gateway.kernel.snapshot === before, 'the gateway to reload without the pack');
    expect((await gatehouse(['pack', 'remove', 'filesystem', '--data-dir', h.dataDir])).code).toBe(1);
  });

  it("checks an added pack against the serverInfo its running upstream recorded: the memory server under another name is recognised", async () => {
    const kg = await startHarness({ upstreams: { kg: { command: process.execPath, args: [join(ROOT, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js')], env: { MEMORY_FILE_PATH: join(workspace, 'kg.jsonl') }, cwd: ROOT, timeout: 60_000 } } });
    try {
      const added = await gatehouse(['pack', 'add', 'memory', '--data-dir', kg.dataDir, '--upstream', 'kg']);
      expect(added.code).toBe(0);
      expect(added.stderr).toContain('note: "kg" is a server the memory pack is for (by its serverInfo name, memory-server)');
      expect(added.stderr).not.toContain('warning');
    } finally {
      await kg.close();
    }
  });
});
