import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, DEFAULT_POLICY, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import type { ShadowReport } from '../../src/kernel/authoring/shadow-report.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

// The enforced bundle: the default policy, and a rule written enforce: false that would deny long echoes.
const ENFORCED = `version: 2
kind: overlay
rules:
  - id: shadow-long-echo
    match: { tools: [fx__echo] }
    when: 'args.text.size() > 5'
    effect: deny
    reason: long echoes are being considered for a ban
    enforce: false
`;

// The draft: denies every echo, allows the other read-only tools under its own rule.
const DRAFT = `version: 2
default: deny
rules:
  - id: draft-no-echo
    match: { tools: [fx__echo] }
    effect: deny
  - id: draft-reads
    match: { annotations: { readOnlyHint: true } }
    effect: allow
`;

let h: Harness;
let dir: string;
const results: { isError?: boolean }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-shadow-'));
  writeFileSync(join(dir, 'overlay.yaml'), ENFORCED);
  writeFileSync(join(dir, 'draft.yaml'), DRAFT);
  h = await startHarness({ policies: [DEFAULT_POLICY, join(dir, 'overlay.yaml')], shadowPolicies: [join(dir, 'draft.yaml')] });
  const client = await connectHttp(h.url);
  for (const text of ['hi', 'yo', 'ok', 'a long text', 'another long one']) results.push(await client.callTool({ name: 'fx__echo', arguments: { text } }));
  results.push(await client.callTool({ name: 'fx__meta', arguments: {} }));
  await client.close();
  await h.gateway.audit.flush();
});
afterAll(async () => {
  await h?.close();
});

const records = () => readFileSync(join(h.dataDir, 'audit', 'default.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
const shadowReport = async (): Promise<ShadowReport> => {
  const run = await gatehouse(['policy', 'shadow', '--data-dir', h.dataDir, '--json']);
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as ShadowReport;
};

describe('shadow policies', () => {
  it('never change an outcome: every call the shadows would deny ran', () => {
    expect(results).toHaveLength(6);
    for (const result of results) expect(result.isError).toBeFalsy();
    const succeeded = records().filter((r) => r.type === 'job.succeeded');
    expect(succeeded).toHaveLength(6);
  });

  it("record each shadow's verdict beside the real one in job.decided", () => {
    const decided = records().filter((r) => r.type === 'job.decided');
    const long = decided.find((r) => (r.data.input as { args: { text?: string } }).args.text === 'a long text')!;
    expect(long.data.effect).toBe('allow');
    expect(long.data.shadow).toEqual([
      expect.objectContaining({ policy: 'rules', effect: 'deny', code: 'GH_ERR_POLICY_DENIED', deciding: ['shadow-long-echo'] }),
      expect.objectContaining({ policy: 'draft', effect: 'deny', ruleIds: ['draft-no-echo', 'draft-reads'], deciding: ['draft-no-echo'] }),
    ]);
    expect(long.data.ruleIds).not.toContain('shadow-long-echo'); // not part of the enforced decision
  });

  it('gatehouse policy shadow reports exactly where each shadow differed, grouped by rule', async () => {
    const report = await shadowReport();
    expect(report).toMatchObject({ decisions: 6, shadowed: 6 });
    const rules = report.policies.find((p) => p.policy === 'rules')!;
    expect(rules).toMatchObject({ decided: 6, changed: 2, errors: 0 });
    expect(rules.unchanged + rules.sameEffectDifferentRules).toBe(4);
    expect(rules.groups).toEqual([expect.objectContaining({ from: 'allow', to: 'deny', count: 2, ruleIds: ['shadow-long-echo'] })]);
    expect(rules.groups[0].examples.map((e) => e.tool)).toEqual(['fx__echo', 'fx__echo']);
    const draft = report.policies.find((p) => p.policy === 'draft')!;
    expect(draft).toMatchObject({ decided: 6, changed: 5, sameEffectDifferentRules: 1, unchanged: 0 });
    expect(draft.groups).toEqual([expect.objectContaining({ from: 'allow', to: 'deny', count: 5, ruleIds: ['draft-no-echo'] })]);
    expect(draft.ruleGroups).toEqual([expect.objectContaining({ from: 'allow', to: 'allow', count: 1, ruleIds: ['draft-reads'] })]);
    const text = await gatehouse(['policy', 'shadow', '--data-dir', h.dataDir]);
    expect(text.stdout).toContain('allow -> deny: 5, by shadow rules draft-no-echo');
  });

  it('reloads the draft with the policy: a bad draft is refused and the last good one kept, a good one swaps in', async () => {
    const before = records().filter((r) => r.type === 'job.decided').at(-1)!.data.shadow as { policy: string; snapshot: string }[];
    writeFileSync(join(dir, 'draft.yaml'), 'version: 2\nrules: [ {id: broken');
    h.gateway.reloadPolicy('test');
    writeFileSync(join(dir, 'draft.yaml'), DRAFT.replace('effect: deny\n  - id: draft-reads', 'effect: allow\n  - id: draft-reads'));
    h.gateway.reloadPolicy('test');
    const client = await connectHttp(h.url);
    await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    await client.close();
    await h.gateway.audit.flush();
    const events = records().filter((r) => r.type.startsWith('policy.reload') && r.data.shadow === true).map((r) => r.type);
    expect(events).toEqual(['policy.reload_refused', 'policy.reloaded']);
    const after = records().filter((r) => r.type === 'job.decided').at(-1)!.data.shadow as { policy: string; snapshot: string; effect: string }[];
    const draftBefore = before.find((s) => s.policy === 'draft')!;
    expect(after.find((s) => s.policy === 'draft')).toMatchObject({ effect: 'allow' });
    expect(after.find((s) => s.policy === 'draft')!.snapshot).not.toBe(draftBefore.snapshot);
    const report = await shadowReport();
    expect(report.policies.find((p) => p.policy === 'draft')!.snapshots).toEqual([draftBefore.snapshot, after.find((s) => s.policy === 'draft')!.snapshot]);
  });
});
