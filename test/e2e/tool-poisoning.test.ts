import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { auditOf, connectHttp, FIXTURE_UPSTREAM, ROOT, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';

// A real gateway in front of the fixture upstream serving two poisoned tools (FIXTURE_POISONED): `add` with
// Invariant Labs' <IMPORTANT> block, `lookup` with an instruction in Unicode tag characters. The CLI runs as
// another process on the same data dir.
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const HIDDEN = /[\u{E0000}-\u{E007F}]/u;
const calls = (file: string, name: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l === name).length : 0);
const codeOf = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code;
const listed = async (client: Awaited<ReturnType<typeof connectHttp>>) => (await client.listTools()).tools.map((t) => t.name);
const textOf = (result: { content?: unknown }) => ((result.content as { text?: string }[] | undefined) ?? []).map((c) => c.text ?? '').join('');

function poisonedUpstream(sideEffects: string, definitionScan?: 'quarantine' | 'log' | 'off') {
  return {
    fx: {
      command: process.execPath,
      args: ['--import', 'tsx', FIXTURE_UPSTREAM],
      env: { SIDE_EFFECTS_FILE: sideEffects, FIXTURE_POISONED: '1' },
      cwd: ROOT,
      timeout: 60_000,
      ...(definitionScan ? { definitionScan } : {}),
    },
  };
}

/** Every file of the data dir's audit trail, as text: where no raw hidden character may land. */
function auditText(dir: string): string {
  const out: string[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (!entry.name.startsWith('pins.json')) out.push(readFileSync(path, 'utf8'));
    }
  };
  walk(dir);
  return out.join('\n');
}

describe('poisoned tool definitions', () => {
  it('quarantines a poisoned tool on first sight: not listed, refused saying why, never run, shown by tools pins, released by accept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-poison-'));
    const sideEffects = join(dir, 'side-effects.log');
    h = await startHarness({ dataDir: dir, upstreams: poisonedUpstream(sideEffects) });
    const client = await connectHttp(h.url, 'modern');
    const names = await listed(client);
    expect(names).toContain('fx__echo');
    expect(names).not.toContain('fx__add');
    expect(names).not.toContain('fx__lookup');

    const refused = await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } });
    expect(refused.isError).toBe(true);
    expect(codeOf(refused)).toBe('GH_ERR_TOOL_QUARANTINED');
    expect(textOf(refused)).toContain('poisoning scan');
    expect(textOf(refused)).toContain('model-instructions in description');
    const smuggled = await client.callTool({ name: 'fx__lookup', arguments: { word: 'x' } });
    expect(codeOf(smuggled)).toBe('GH_ERR_TOOL_QUARANTINED');
    expect(textOf(smuggled)).toContain('hidden-unicode');
    expect(textOf(smuggled)).not.toMatch(HIDDEN);
    expect(calls(sideEffects, 'add') + calls(sideEffects, 'lookup')).toBe(0);

    // Audited once per definition, with escaped excerpts: a second listing of the same definitions adds nothing.
    const suspected = async () => (await auditOf(dir, 'default')).filter((r) => r.type === 'tool.poisoning_suspected');
    await waitFor(async () => (await suspected()).length === 2, 'tool.poisoning_suspected for add and lookup');
    await h.close();
    h = await startHarness({ dataDir: dir, upstreams: poisonedUpstream(sideEffects) });
    const again = await connectHttp(h.url, 'modern');
    expect(await listed(again)).not.toContain('fx__add');
    const records = await suspected();
    expect(records).toHaveLength(2);
    const lookup = records.find((r) => (r.data as { tool: string }).tool === 'fx__lookup')!.data as { findings: { kind: string; field: string; excerpt: string; decoded?: string }[] };
    expect(lookup.findings.map((f) => f.kind)).toEqual(expect.arrayContaining(['hidden-unicode', 'model-instructions']));
    expect(lookup.findings.find((f) => f.kind === 'hidden-unicode')!.excerpt).toContain('\\u{E0049}');
    expect(lookup.findings.find((f) => f.kind === 'hidden-unicode')!.decoded).toContain('Ignore previous instructions');
    expect(auditText(dir)).not.toMatch(HIDDEN);

    const pins = await gatehouse(['tools', 'pins', '--json', '--data-dir', dir]);
    expect(pins.code, pins.stderr).toBe(0);
    expect(pins.stdout).not.toMatch(HIDDEN);
    const add = JSON.parse(pins.stdout).find((p: { tool: string }) => p.tool === 'fx__add');
    expect(add.state).toBe('suspect');
    expect(add.findings.map((f: { kind: string }) => f.kind)).toContain('model-instructions');
    expect(JSON.parse(pins.stdout).find((p: { tool: string }) => p.tool === 'fx__echo').state).toBe('pinned');
    const text = await gatehouse(['tools', 'pins', '--data-dir', dir]);
    expect(text.stdout).toMatch(/fx__add\s+suspect .*model-instructions \(description\)/);
    const shown = await gatehouse(['tools', 'show', 'fx__lookup', '--data-dir', dir]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('hidden-unicode/tag-characters in description');
    expect(shown.stdout).not.toMatch(HIDDEN);

    const accepted = await gatehouse(['tools', 'accept', 'fx__add', '--as', 'carol', '--data-dir', dir]);
    expect(accepted.code, accepted.stderr).toBe(0);
    await waitFor(async () => (await listed(again)).includes('fx__add'), 'fx__add to be listed once accepted');
    const ran = await again.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } });
    expect(ran.isError).toBeFalsy();
    expect(calls(sideEffects, 'add')).toBe(1);
    expect(await listed(again)).not.toContain('fx__lookup');
    const after = JSON.parse((await gatehouse(['tools', 'pins', '--json', '--data-dir', dir])).stdout).find((p: { tool: string }) => p.tool === 'fx__add');
    expect(after).toMatchObject({ state: 'pinned', findingsAcceptedBy: 'carol' });
    await again.close();
    await h.close();
    h = undefined;
    const decided = (await auditOf(dir, 'default')).filter((r) => r.type === 'tool.accepted');
    expect(decided.map((r) => [r.actor, (r.data as { tool: string }).tool])).toEqual([['carol', 'fx__add']]);
  });

  it('with definitionScan: log, serves the flagged tool and records the findings; with off, scans nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-poison-'));
    const sideEffects = join(dir, 'side-effects.log');
    h = await startHarness({ dataDir: dir, upstreams: poisonedUpstream(sideEffects, 'log') });
    const client = await connectHttp(h.url, 'modern');
    expect(await listed(client)).toEqual(expect.arrayContaining(['fx__add', 'fx__lookup']));
    expect((await client.callTool({ name: 'fx__add', arguments: { a: 2, b: 2 } })).isError).toBeFalsy();
    await waitFor(async () => (await auditOf(dir, 'default')).filter((r) => r.type === 'tool.poisoning_suspected' && (r.data as { mode: string }).mode === 'log').length === 2, 'the findings audited in log mode');
    const pins = JSON.parse((await gatehouse(['tools', 'pins', '--json', '--data-dir', dir])).stdout);
    expect(pins.find((p: { tool: string }) => p.tool === 'fx__add').findings.length).toBeGreaterThan(0);
    await client.close();
    await h.close();

    const fresh = mkdtempSync(join(tmpdir(), 'gatehouse-poison-'));
    h = await startHarness({ dataDir: fresh, upstreams: poisonedUpstream(sideEffects, 'off') });
    const off = await connectHttp(h.url, 'modern');
    expect(await listed(off)).toEqual(expect.arrayContaining(['fx__add', 'fx__lookup']));
    expect((await auditOf(fresh, 'default')).some((r) => r.type === 'tool.poisoning_suspected')).toBe(false);
    await off.close();
  });
});
