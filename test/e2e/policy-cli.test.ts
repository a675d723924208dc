import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouse } from '../helpers/cli.ts';
import { connectHttp, DEFAULT_POLICY, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import type { DecisionInput, Explanation } from '../../src/kernel/decision.ts';
import { openAuditStore } from '../../src/runtime/state.ts';

const tempDir = (files: Record<string, string> = {}): string => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-cli-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
};

/** The default policy in a folder of its own, plus more files. */
const withDefault = (files: Record<string, string>): string => {
  const dir = tempDir(files);
  cpSync(DEFAULT_POLICY, join(dir, 'default.yaml'));
  return dir;
};

const NO_DELETE = `version: 1
rules:
  - { id: no-delete, match: { tools: ["*__delete*"] }, effect: deny, reason: deleting is not allowed }
  - { id: never-matches, match: { servers: [nowhere] }, effect: deny }
`;

describe('gatehouse policy check', () => {
  it('validates a folder as one bundle, leaving its tests out', async () => {
    const result = await gatehouse(['policy', 'check', 'policies']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('OK: 9 rules from default.yaml, session-safety.yaml; default deny');
    expect(result.stdout).toMatch(/snapshot sha256:[0-9a-f]{64}/);
  });

  it('names the file and line of an invalid rule', async () => {
    const dir = withDefault({ 'bad.yaml': 'version: 1\nrules:\n  - id: oops\n    effect: maybe\n' });
    const result = await gatehouse(['policy', 'check', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${join(dir, 'bad.yaml')}:4: rules[0].effect`);
    expect(result.stderr).toContain('GH_ERR_POLICY_INVALID');
  });
});

describe('gatehouse policy test', () => {
  it('passes the shipped tests with every rule of the shipped policies covered both ways', async () => {
    const result = await gatehouse(['policy', 'test', 'policies/', '--strict-coverage']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('18 cases in 2 files: 18 passed, 0 failed');
    expect(result.stdout).toContain('rule coverage: 9 of 9 rules');
  });

  const failing = () =>
    withDefault({
      'extra.yaml': NO_DELETE,
      'extra_test.yaml': `cases:
  - name: deleting is denied
    call: { tool: notes__delete_note, annotations: { destructiveHint: true } }
    expect: { effect: deny, ruleIds: [no-delete, destructive-tools-need-approval, everything-else-bounded] }
  - name: reading runs
    call: { tool: notes__read, principal: alice, annotations: { readOnlyHint: true } }
    expect: { effect: allow_with_constraints }
`,
    });

  it('prints each failure with what was expected, what was decided and why, then the coverage gaps', async () => {
    const dir = failing();
    const result = await gatehouse(['policy', 'test', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`FAIL reading runs (${join(dir, 'extra_test.yaml')}:5)`);
    expect(result.stdout).toContain('  expected allow_with_constraints\n  got      allow, rules read-only-tools\n  decided by read-only-tools: read-only tool');
    expect(result.stdout).not.toContain('FAIL deleting is denied');
    expect(result.stdout).toContain('2 cases in 1 file: 1 passed, 1 failed');
    expect(result.stdout).toContain('rule coverage: 4 of 6 rules');
    expect(result.stdout).toContain('warn never-matches: no case where it matches\n');
  });

  it('treats coverage gaps as warnings unless --strict-coverage, and reports as JSON', async () => {
    const dir = withDefault({
      'extra.yaml': NO_DELETE,
      'extra_test.yaml': 'cases:\n  - name: delete\n    call: { tool: fs__delete }\n    expect: { effect: deny }\n',
    });
    const lenient = await gatehouse(['policy', 'test', dir]);
    expect(lenient.code).toBe(0);
    expect(lenient.stdout).toContain('warn read-only-tools: no case where it matches');
    const strict = await gatehouse(['policy', 'test', dir, '--strict-coverage', '--json']);
    expect(strict.code).toBe(1);
    const report = JSON.parse(strict.stdout) as { passed: number; gaps: string[]; coverage: { id: string; positive: string[] }[] };
    expect(report.passed).toBe(1);
    expect(report.gaps).toEqual(['destructive-tools-need-approval', 'everything-else-bounded', 'never-matches', 'no-delete', 'read-only-tools', 'resources-and-prompts-read']);
    expect(report.coverage.find((c) => c.id === 'no-delete')).toEqual({ id: 'no-delete', positive: ['delete'], negative: [] });
  });

  it('rejects a malformed test file by file and line, and bad usage with exit 2', async () => {
    const dir = withDefault({ 'x_test.yaml': 'cases:\n  - name: no tool\n    call: { principal: alice }\n    expect: { effect: allow }\n' });
    const bad = await gatehouse(['policy', 'test', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${join(dir, 'x_test.yaml')}:3: cases[0].call.tool`);
    expect((await gatehouse(['policy', 'test', dir, 'other'])).code).toBe(2);
    expect((await gatehouse(['policy', 'test', join(dir, 'missing')])).code).toBe(2);
    expect((await gatehouse(['policy', 'frobnicate'])).code).toBe(2);
  });
});

describe('gatehouse policy explain', () => {
  const destructive = JSON.stringify({ tool: 'notes__delete_note', principal: 'alice', annotations: { destructiveHint: true }, args: { id: 'n1' } });

  it('prints every rule tried, matched or not, then the decision', async () => {
    const result = await gatehouse(['policy', 'explain', '--policy', 'policies', '--call', destructive]);
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain('call notes__delete_note (upstream notes) by alice, tenant default');
    expect(out).toContain('rules: 9 tried, 3 matched'); // session-safety/scan-results (no effect) matches every tool call
    expect(out).toMatch(/MATCH {2}destructive-tools-need-approval +require_approval/);
    expect(out).toMatch(/ - {4}read-only-tools +allow/);
    expect(out).toMatch(/MATCH {2}session-safety\/scan-results +labels only/); // written without an effect: no part in the decision
    expect(out).toContain('  effect       require_approval\n  reason       the tool is marked destructive');
    expect(out).toContain('  rules        destructive-tools-need-approval, everything-else-bounded');
    expect(out).toContain('  constraints  {"timeoutMs":60000,"maxOutputBytes":1048576}');
    expect(out).toMatch(/ {2}snapshot {5}sha256:[0-9a-f]{64}/);
  });

  it('prints the explanation as JSON, with the policies of a config', async () => {
    const dir = tempDir({ 'gatehouse.yaml': `policies: [${JSON.stringify(DEFAULT_POLICY)}, extra.yaml]\nupstreams: { x: { command: "\${NOT_SET_ANYWHERE}" } }\n`, 'extra.yaml': NO_DELETE });
    const result = await gatehouse(['policy', 'explain', '--config', join(dir, 'gatehouse.yaml'), '--json', '--call', destructive]);
    expect(result.code).toBe(0);
    const explanation = JSON.parse(result.stdout) as Explanation;
    expect(explanation.decision).toMatchObject({ effect: 'deny', reason: 'deleting is not allowed' });
    expect(explanation.decision.ruleIds[0]).toBe('no-delete');
    expect(explanation.rules.map((r) => [r.id, r.matched])).toEqual([
      ['destructive-tools-need-approval', true],
      ['everything-else-bounded', true],
      ['never-matches', false],
      ['no-delete', true],
      ['read-only-tools', false],
      ['resources-and-prompts-read', false],
    ]);
    // ./gatehouse.yaml is the default config
    const fromCwd = await gatehouse(['policy', 'explain', '--json', '--call', destructive], { cwd: dir });
    expect((JSON.parse(fromCwd.stdout) as Explanation).decision.effect).toBe('deny');
  });

  it('answers a bad call with exit 2', async () => {
    expect((await gatehouse(['policy', 'explain', '--policy', 'policies'])).code).toBe(2);
    const bad = await gatehouse(['policy', 'explain', '--policy', 'policies', '--call', '{"tool":"nonamespace"}']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('tool: expected a namespaced tool name');
    expect((await gatehouse(['policy', 'explain', '--call', destructive], { cwd: tempDir() })).code).toBe(2); // no policies anywhere
  });

  it('shows the value or the error of each when condition', async () => {
    const dir = tempDir({
      'cel.yaml': `version: 2
default: allow
rules:
  - id: no-etc
    match: { tools: ["fs__*"] }
    when: 'args.path.startsWith("/etc")'
    effect: deny
    reason: not under /etc
  - id: broken
    match: { tools: ["fs__*"] }
    when: 'args.nope.deeper == 1'
    effect: require_approval
`,
    });
    const call = JSON.stringify({ tool: 'fs__read', args: { path: '/home/a' } });
    const text = await gatehouse(['policy', 'explain', '--policy', dir, '--call', call]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('when args.path.startsWith("/etc") => false');
    expect(text.stdout).toMatch(/when args\.nope\.deeper == 1 => error: /);
    const json = JSON.parse((await gatehouse(['policy', 'explain', '--policy', dir, '--json', '--call', call])).stdout) as Explanation;
    expect(json.rules.find((r) => r.id === 'no-etc')?.when).toMatchObject({ expression: 'args.path.startsWith("/etc")', value: false });
    expect(json.rules.find((r) => r.id === 'broken')?.when?.error).toBeTruthy();
    expect(json.decision.errors?.map((e) => e.ruleId)).toEqual(['broken']);
  });
});

describe('gatehouse policy replay', () => {
  let dataDir: string;
  const DAY = 86_400_000;
  const input = (tool: string, extra: Partial<DecisionInput> = {}): DecisionInput => ({
    tenant: 'default',
    principal: 'alice',
    server: tool.split('__')[0],
    tool,
    annotations: undefined,
    args: {},
    ...extra,
  });

  beforeAll(async () => {
    dataDir = tempDir();
    const now = Date.now();
    let job = 0;
    const decided = (tenant: string, effect: string, ruleIds: string[], recorded: DecisionInput | undefined, at = now - 1_000): AuditEvent => ({
      tenant,
      at,
      type: 'job.decided',
      actor: 'kernel',
      jobId: `job-${++job}`,
      data: { effect, ruleIds, policySnapshot: 'sha256:before', reason: 'recorded', ...(recorded ? { input: { ...recorded, tenant, now: at } } : {}) },
    });
    const submitted = (tenant: string): AuditEvent => ({ tenant, at: now, type: 'job.submitted', actor: 'alice', jobId: `job-${job}`, data: {} });
    const destructive = { annotations: { destructiveHint: true } };
    // Recorded under the default policy; the draft adds no-delete.
    const writer = new ChainWriter(openAuditStore(dataDir));
    await writer.write(
      new Map([
        [
          'default',
          [
            submitted('default'),
            decided('default', 'require_approval', ['destructive-tools-need-approval', 'everything-else-bounded'], input('notes__delete_note', destructive)),
            decided('default', 'require_approval', ['destructive-tools-need-approval', 'everything-else-bounded'], input('fs__delete', { ...destructive, args: { path: '[REDACTED]' } })),
            decided('default', 'allow', ['read-only-tools'], input('notes__read', { annotations: { readOnlyHint: true } })),
            decided('default', 'allow_with_constraints', ['everything-else-bounded'], input('notes__delete_all')),
            decided('default', 'allow', ['read-only-tools'], undefined), // before inputs were recorded
            decided('default', 'allow', ['read-only-tools'], input('notes__delete_old'), now - 30 * DAY), // outside --since
          ],
        ],
        ['acme', [decided('acme', 'allow_with_constraints', ['everything-else-bounded', 'old-rule'], input('notes__add'))]],
      ]),
    );
    await writer.close();
  });

  it('reports the decisions a draft changes, grouped, with examples, and which could not be replayed', async () => {
    const draft = withDefault({ 'extra.yaml': NO_DELETE });
    const result = await gatehouse(['policy', 'replay', '--policy', draft, '--data-dir', dataDir, '--since', '7d']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const out = result.stdout;
    expect(out).toMatch(/^6 recorded decisions since \S+; replayed 5 under sha256:/);
    expect(out).toContain('  changed effect               3\n  same effect, different rules 1\n  unchanged                    1\n  not replayable (no input)    1');
    expect(out).toContain('  require_approval -> deny: 2, by draft rules no-delete\n    job job-1  notes__delete_note  tenant default');
    expect(out).toContain('    job job-2  fs__delete  tenant default');
    expect(out).toContain('  allow_with_constraints -> deny: 1, by draft rules no-delete\n    job job-4  notes__delete_all');
    expect(out).toContain('same effect, different rules:\n  allow_with_constraints: 1, by draft rules everything-else-bounded\n    job job-7  notes__add  tenant acme');
    expect(out).toContain('note: 1 replayed decision has redacted arguments');
  });

  it('reports as JSON, one tenant at a time, all time', async () => {
    const draft = withDefault({ 'extra.yaml': NO_DELETE });
    const result = await gatehouse(['policy', 'replay', '--policy', join(draft, 'default.yaml'), join(draft, 'extra.yaml'), '--data-dir', dataDir, '--tenant', 'default', '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ tenants: ['default'], decisions: 6, replayed: 5, skipped: 1, changed: 4, unchanged: 1, sameEffectDifferentRules: 0, redacted: 1 });
    expect(report.groups.map((g: { from: string; to: string; count: number }) => `${g.from}>${g.to}:${g.count}`)).toEqual([
      'require_approval>deny:2',
      'allow>deny:1',
      'allow_with_constraints>deny:1',
    ]);
  });

  it('needs a draft and a sensible --since', async () => {
    expect((await gatehouse(['policy', 'replay', '--data-dir', dataDir])).code).toBe(2);
    expect((await gatehouse(['policy', 'replay', '--policy', 'policies', '--data-dir', dataDir, '--since', 'yesterday-ish'])).code).toBe(2);
  });
});

describe('gatehouse policy replay over a running gateway', () => {
  const HIDE_TEXT = `version: 2
rules:
  - { id: hide-text, match: { tools: [fx__echo] }, effect: allow_with_constraints, constraints: { redact: { args: [text] } } }
`;
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ policies: [withDefault({ 'hide-text.yaml': HIDE_TEXT })] });
    const client = await connectHttp(h.url);
    await client.callTool({ name: 'fx__echo', arguments: { text: 'secret' } });
    await client.callTool({ name: 'fx__write', arguments: { key: 'k', value: 'v' } });
    await client.close();
    await h.gateway.audit.flush();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('replays what the gateway recorded, from another process while it runs', async () => {
    const draft = withDefault({
      'hide-text.yaml': HIDE_TEXT,
      'draft.yaml': `version: 2
rules:
  - { id: no-writes, match: { tools: ["*__write"] }, effect: deny }
  - { id: no-secret-echo, match: { tools: [fx__echo] }, when: 'args.text == "secret"', effect: deny }
`,
    });
    const result = await gatehouse(['policy', 'replay', '--policy', draft, '--data-dir', h.dataDir, '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    // The echo's text was recorded redacted, so the draft's condition on it cannot see "secret".
    expect(report).toMatchObject({ decisions: 2, replayed: 2, skipped: 0, changed: 1, unchanged: 1, redacted: 1 });
    expect(report.groups).toMatchObject([{ from: 'require_approval', to: 'deny', ruleIds: ['no-writes'], examples: [{ tool: 'fx__write' }] }]);
  });
});

it('documents every action in --help', async () => {
  const help = await gatehouse(['policy', 'replay', '--help']);
  expect(help.code).toBe(0);
  for (const action of ['check FILE|DIR', 'test [DIR|FILE]', 'explain --call JSON', 'replay --policy DRAFT']) expect(help.stdout).toContain(`gatehouse policy ${action}`);
});
