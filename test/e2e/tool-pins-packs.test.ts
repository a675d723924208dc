import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { auditOf, connectHttp, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { call, codeOf, serverBin, stdio, textOf } from '../helpers/pack-suite.ts';
import { gatehouse } from '../helpers/cli.ts';
import { BUNDLED_PACKS } from '../../src/packs/places.ts';
import { loadPack } from '../../src/packs/pack.ts';

// The bundled memory pack in front of the real server-memory: the digests its tools.yaml pins are the pins of the
// tools it governs. A copy of the pack whose digest for read_graph differs stands for a server that changed since
// the pack was written (or one that lies on first sight).
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const memoryUpstream = (dir: string) => stdio([serverBin('@modelcontextprotocol/server-memory')], { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') });
const pinsIn = async (dir: string) => JSON.parse((await gatehouse(['tools', 'pins', '--json', '--data-dir', dir])).stdout) as { tool: string; state: string; pinnedBy: string }[];

describe("pins from a pack's tools.yaml", () => {
  it("pins each tool of a pack-governed upstream to the pack's digest, by the pack", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pack-pins-'));
    h = await startHarness({ dataDir: dir, policies: [], upstreams: { memory: memoryUpstream(dir) }, packs: [{ name: 'memory', params: {} }] });
    const { version } = loadPack(join(BUNDLED_PACKS, 'memory')).manifest;
    const pins = await pinsIn(dir);
    expect(pins.length).toBeGreaterThan(0);
    expect(pins.every((p) => p.state === 'pinned' && p.pinnedBy === `pack:memory@${version}`)).toBe(true);
  });

  it('treats a first-seen definition that is not the one the pack pinned as changed: quarantined, a digest-only diff, released by an accept that then wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pack-pins-'));
    const pack = join(dir, 'memory-pack');
    cpSync(join(BUNDLED_PACKS, 'memory'), pack, { recursive: true });
    const tools = join(pack, 'tools.yaml');
    const pinned = loadPack(pack).tools.tools.read_graph.digest;
    writeFileSync(tools, readFileSync(tools, 'utf8').replace(pinned, `sha256:${'0'.repeat(64)}`));
    const install = { name: pack, upstream: 'memory', params: {} };
    h = await startHarness({ dataDir: dir, policies: [], upstreams: { memory: memoryUpstream(dir) }, packs: [install] });
    const client = await connectHttp(h.url, 'modern');
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('memory__read_graph');
    expect(codeOf(await call(client, 'memory__read_graph', {}))).toBe('GH_ERR_TOOL_QUARANTINED');
    expect((await call(client, 'memory__search_nodes', { query: 'x' })).isError).toBeFalsy();

    const diff = await gatehouse(['tools', 'diff', 'memory__read_graph', '--json', '--data-dir', dir]);
    expect(JSON.parse(diff.stdout)).toMatchObject({ state: 'quarantined', pinnedBy: 'pack:memory@1.0.0', pinnedDigestOnly: true, fields: [], pinned: {}, current: { name: 'read_graph' } });
    expect((await gatehouse(['tools', 'diff', 'memory__read_graph', '--data-dir', dir])).stdout).toContain('pinned only a digest');
    const quarantined = (await auditOf(dir, 'default')).filter((r) => r.type === 'tool.quarantined');
    expect(quarantined.map((r) => r.data)).toEqual([expect.objectContaining({ tool: 'memory__read_graph', previous: `sha256:${'0'.repeat(64)}`, pinnedBy: 'pack:memory@1.0.0' })]);

    expect((await gatehouse(['tools', 'accept', 'memory__read_graph', '--as', 'ops', '--data-dir', dir])).code).toBe(0);
    expect(textOf(await call(client, 'memory__read_graph', {}))).toContain('entities');
    await client.close();
    await h.close();
    // A restart with the same pack: the operator's accept holds over the pack's digest.
    h = await startHarness({ dataDir: dir, policies: [], upstreams: { memory: memoryUpstream(dir) }, packs: [install] });
    const again = await connectHttp(h.url, 'modern');
    await waitFor(async () => (await again.listTools()).tools.some((t) => t.name === 'memory__read_graph'), 'read_graph listed');
    expect((await pinsIn(dir)).find((p) => p.tool === 'memory__read_graph')).toMatchObject({ state: 'pinned', pinnedBy: 'ops' });
    await again.close();
  });
});
