import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.ts';
import { loadPolicyFiles, mergePolicySources, parsePolicy, policyFilesIn } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import { impliedRiskTags } from '../../src/kernel/hints.ts';
import { compileGlob } from '../../src/kernel/glob.ts';
import type { DecisionInput } from '../../src/kernel/decision.ts';
import { coded, invalidPolicy } from '../helpers/coded-errors.ts';

const policy = (text: string, file = 'p.yaml') => parsePolicy(parseYamlText(file, text, 'GH_ERR_POLICY_INVALID'));
const kernelOf = (...texts: string[]) => new Kernel(mergePolicySources(texts.map((t, i) => policy(t, `p${i}.yaml`))));
const v2 = (rules: string, head = 'default: deny') => `version: 2\n${head}\nrules:\n${rules}`;

const call = (over: Partial<DecisionInput> = {}): DecisionInput => ({
  tenant: 'acme',
  principal: 'alice',
  server: 'fs',
  tool: 'fs__read_file',
  annotations: undefined,
  args: {},
  now: Date.UTC(2025, 0, 6, 10), // a Monday, 10:00 UTC
  ...over,
});

describe('kernel v2: match criteria', () => {
  it('matches tenants and principals by exact name or glob', () => {
    const k = kernelOf(v2('  - { id: a, match: { tenants: [acme], principals: ["svc-*", bob] }, effect: allow }'));
    expect(k.decide(call({ principal: 'svc-build' })).effect).toBe('allow');
    expect(k.decide(call({ principal: 'bob' })).effect).toBe('allow');
    expect(k.decide(call({ principal: 'alice' })).effect).toBe('deny');
    expect(k.decide(call({ principal: 'bob', tenant: 'other' })).effect).toBe('deny');
  });

  // A backtracking matcher takes minutes here: the test's own timeout is the check.
  it('matches name globs in linear time: a many-star pattern on a long caller-chosen name does not hang the kernel', { timeout: 5_000 }, () => {
    const k = kernelOf(v2('  - { id: a, match: { principals: ["*a*a*a*a*a*a*a*b"] }, effect: allow }'));
    expect(k.decide(call({ principal: 'a'.repeat(5000) })).effect).toBe('deny');
    expect(k.decide(call({ principal: `${'a'.repeat(5000)}b` })).effect).toBe('allow');
    expect(compileGlob('svc-?x*')('svc-1xyz')).toBe(true);
    expect(compileGlob('svc-?x*')('svc-xyz')).toBe(false);
    expect(compileGlob('a*b*c')('a-b-b-c')).toBe(true);
    expect(compileGlob('a*b*c')('a-c-b')).toBe(false);
    expect(compileGlob('*.+[x]')('1.+[x]')).toBe(true); // regex metacharacters are literal
  });

  it('matches servers and tools by glob, with exact names indexed', () => {
    const k = kernelOf(
      v2(`  - { id: exact, match: { servers: [fs], tools: [fs__read_file] }, effect: allow }
  - { id: glob, match: { servers: ["f*"], tools: ["*__write_*"] }, effect: require_approval }`),
    );
    expect(k.decide(call()).ruleIds).toEqual(['exact']);
    expect(k.decide(call({ tool: 'fs__write_file' })).ruleIds).toEqual(['glob']);
    expect(k.decide(call({ server: 'web', tool: 'web__write_x' })).effect).toBe('deny');
  });

  it('matches annotations after the bundle overrides them', () => {
    const k = kernelOf(
      `version: 2
tools:
  "fs__write_file": { annotations: { destructiveHint: true } }
  "fs__read_*": { annotations: { readOnlyHint: true } }
rules:
  - { id: ro, match: { annotations: { readOnlyHint: true } }, effect: allow }
  - { id: destroy, match: { annotations: { destructiveHint: true } }, effect: require_approval }
`,
    );
    expect(k.decide(call({ tool: 'fs__read_file', annotations: { readOnlyHint: false } })).effect).toBe('allow');
    expect(k.decide(call({ tool: 'fs__write_file', annotations: { destructiveHint: false } })).effect).toBe('require_approval');
    expect(k.decide(call({ tool: 'fs__other' })).effect).toBe('deny');
  });

  it('merges conflicting overrides to the most restrictive hint, whatever the file order', () => {
    const a = 'version: 2\nkind: overlay\ntools:\n  "x__t": { annotations: { readOnlyHint: true, openWorldHint: false }, riskTags: [a] }\n';
    const b = 'version: 2\nkind: overlay\ntools:\n  "x__t": { annotations: { readOnlyHint: false, destructiveHint: true }, riskTags: [b] }\n';
    const ab = mergePolicySources([policy(a, 'a.yaml'), policy(b, 'b.yaml')]);
    const ba = mergePolicySources([policy(b, 'b.yaml'), policy(a, 'a.yaml')]);
    expect(ab.tools).toEqual({ x__t: { annotations: { readOnlyHint: false, openWorldHint: false, destructiveHint: true }, riskTags: ['a', 'b'] } });
    expect(ab.snapshot).toBe(ba.snapshot);
  });

  it('matches risk tags from the input, the bundle and the annotations', () => {
    const k = kernelOf(
      `version: 2
tools:
  "db__*": { riskTags: [pii] }
rules:
  - { id: pii, match: { riskTags: [pii, secrets] }, effect: require_approval }
  - { id: destructive, match: { riskTags: [destructive] }, effect: deny }
  - { id: reads, match: { riskTags: [read] }, effect: allow }
`,
    );
    expect(k.decide(call({ server: 'db', tool: 'db__query', annotations: { readOnlyHint: true } })).effect).toBe('require_approval');
    expect(k.decide(call({ riskTags: ['secrets'], annotations: { readOnlyHint: true } })).effect).toBe('require_approval');
    expect(k.decide(call({ annotations: { readOnlyHint: true } })).effect).toBe('allow');
    expect(k.decide(call({ annotations: { destructiveHint: true } })).effect).toBe('deny');
    expect(k.decide(call()).effect).toBe('deny'); // write, open-world: no rule
  });

  it('derives risk tags from annotations as the kernel reads hints', () => {
    expect(impliedRiskTags(undefined)).toEqual(['write', 'open-world']);
    expect(impliedRiskTags({ readOnlyHint: true, openWorldHint: false })).toEqual(['read']);
    expect(impliedRiskTags({ destructiveHint: true })).toEqual(['write', 'destructive', 'open-world']);
  });

  it('matches labels: every key present with one of its values', () => {
    const k = kernelOf(v2('  - { id: prod, match: { labels: { env: [prod, staging], team: core } }, effect: allow }'));
    expect(k.decide(call({ labels: { env: 'staging', team: 'core' } })).effect).toBe('allow');
    expect(k.decide(call({ labels: { env: 'dev', team: 'core' } })).effect).toBe('deny');
    expect(k.decide(call({ labels: { env: 'prod' } })).effect).toBe('deny');
    expect(k.decide(call()).effect).toBe('deny');
  });
});

describe('kernel v2: effects and what decisions carry', () => {
  const k = kernelOf(
    v2(
      `  - { id: base, match: { servers: [fs] }, effect: allow }
  - id: bounded
    match: { servers: [fs] }
    effect: allow_with_constraints
    constraints:
      timeoutMs: 5s
      maxOutputBytes: 1000
      maxArgBytes: 4096
      paths: { args: [path], allow: ["/tmp/ws/**"], deny: ["**/.ssh/**"] }
      egress: { allowHosts: [api.example.com] }
      redact: { args: [password, "/sk-[A-Za-z0-9]{20,}/"], result: [token] }
      maxCallsPerSession: 100
  - { id: tighter, match: { tools: ["fs__read_*"] }, effect: allow_with_constraints, constraints: { timeoutMs: 1000, redact: { args: [secret] } } }
  - { id: slow-down, match: { tools: ["fs__write_*"] }, effect: throttle, throttle: { limit: 10, window: 1m, per: tool } }
  - { id: slow-down-more, match: { tools: ["fs__write_*"], principals: [bob] }, effect: throttle, throttle: { limit: 2, window: 30s } }
  - id: ask
    match: { tools: ["fs__delete_*", "fs__write_secret"] }
    effect: require_approval
    reason: deleting needs a human
    approval: { ttl: 15m, approvers: [carol, "group:ops"], selfApprove: false, quorum: 2, onApprove: execute }
  - { id: ask-too, match: { tools: ["fs__delete_*"] }, effect: require_approval }
  - { id: never, match: { tools: ["fs__delete_root"] }, effect: deny, reason: no, remediation: "use fs__delete_file on one file instead" }
  - { id: never-either, match: { tools: ["fs__delete_root"] }, effect: deny, remediation: "ask an operator" }
`,
    ),
  );

  it('merges the constraints of every matching rule, stamped with rule ids', () => {
    const d = k.decide(call());
    expect(d.effect).toBe('allow_with_constraints');
    expect(d.ruleIds).toEqual(['bounded', 'tighter', 'base']);
    expect(d.constraints).toEqual({
      timeoutMs: 1000,
      maxOutputBytes: 1000,
      maxArgBytes: 4096,
      paths: [{ ruleId: 'bounded', args: ['path'], allow: ['/tmp/ws/**'], deny: ['**/.ssh/**'] }],
      egress: [{ ruleId: 'bounded', allowHosts: ['api.example.com'] }],
      redact: { args: ['/sk-[A-Za-z0-9]{20,}/', 'password', 'secret'], result: ['token'] },
      maxCallsPerSession: [{ ruleId: 'bounded', limit: 100 }],
    });
    expect(d.throttles).toBeUndefined();
    expect(d.approvals).toBeUndefined();
  });

  it('lists every matching throttle spec', () => {
    const d = k.decide(call({ tool: 'fs__write_file', principal: 'bob' }));
    expect(d.effect).toBe('throttle');
    expect(d.throttles).toEqual([
      { ruleId: 'slow-down', limit: 10, windowMs: 60_000, per: 'tool' },
      { ruleId: 'slow-down-more', limit: 2, windowMs: 30_000, per: 'principal' },
    ]);
    expect(d.constraints.timeoutMs).toBe(5000); // constraints come from all matching rules, not only the deciding ones
  });

  it('lists every matching approval spec, and the reason of a deciding rule', () => {
    const d = k.decide(call({ tool: 'fs__delete_file' }));
    expect(d).toMatchObject({ effect: 'require_approval', reason: 'deleting needs a human' });
    expect(d.approvals).toEqual([{ ruleId: 'ask', ttlMs: 900_000, approvers: ['carol', 'group:ops'], selfApprove: false, quorum: 2, onApprove: 'execute' }, { ruleId: 'ask-too' }]);
  });

  it('gives the remediation of the deciding rules', () => {
    const d = k.decide(call({ tool: 'fs__delete_root' }));
    expect(d).toMatchObject({ effect: 'deny', reason: 'no', remediation: 'use fs__delete_file on one file instead\nask an operator' });
    expect(d.ruleIds.slice(0, 2)).toEqual(['never', 'never-either']);
    expect(d.approvals).toHaveLength(2); // still listed: the approvals code may want to know
  });

  it('applies the default when nothing matches, with no constraints', () => {
    expect(k.decide(call({ server: 'web', tool: 'web__get' }))).toMatchObject({ effect: 'deny', ruleIds: [], constraints: {}, reason: 'no rule matched; the policy default is deny' });
  });
});

describe('kernel v2: conditions', () => {
  const k = kernelOf(
    v2(
      `  - { id: allow-ws, effect: allow, when: 'pathUnder(args.path, "/tmp/ws")' }
  - { id: deny-etc, effect: deny, when: 'pathUnder(args.path, "/etc")', remediation: "work under /tmp/ws" }
  - { id: big, effect: require_approval, when: 'args.count > 10' }
  - { id: hours, effect: deny, when: 'now.getHours() < 6', reason: night }
  - { id: who, effect: allow, when: 'principal == "svc" && tenant == "acme" && tool == "fs__read_file" && server == "fs"' }
  - { id: prod, effect: require_approval, when: 'labels.env == "prod"' }
  - { id: non-bool, effect: allow, when: 'args.maybe' }
`,
    ),
  );

  it('decides on arguments, principal, time and labels', () => {
    const at = (args: Record<string, unknown>, over: Partial<DecisionInput> = {}) => k.decide(call({ args: { count: 0, maybe: false, ...args }, labels: { env: 'dev' }, ...over })).effect;
    expect(at({ path: '/tmp/ws/a' })).toBe('allow');
    expect(at({ path: '/etc/passwd' })).toBe('deny');
    expect(at({ path: '/tmp/ws/../../etc/passwd' })).toBe('deny');
    expect(at({ path: '/tmp/ws/a', count: 11 })).toBe('require_approval');
    expect(at({ path: '/tmp/ws/a', count: 10.5 })).toBe('require_approval');
    expect(at({ path: '/tmp/ws/a', count: 10 })).toBe('allow');
    expect(at({ path: '/tmp/ws/a' }, { labels: { env: 'prod' } })).toBe('require_approval');
    expect(at({ path: '/tmp/ws/a' }, { now: Date.UTC(2025, 0, 6, 3) })).toBe('deny');
    expect(at({ path: '/nowhere' }, { principal: 'svc' })).toBe('allow');
    expect(at({ path: '/nowhere' }, { principal: 'svc', tool: 'fs__other' })).toBe('deny');
  });

  it('counts a condition that throws as a match for deny and require_approval, not for allow, and records it', () => {
    const d = k.decide(call({ args: {}, labels: { env: 'dev' } }));
    expect(d.effect).toBe('deny');
    expect(d.ruleIds).toEqual(['deny-etc', 'big']);
    expect(d.remediation).toBe('work under /tmp/ws');
    expect(d.errors?.map((e) => e.ruleId)).toEqual(['allow-ws', 'big', 'deny-etc', 'non-bool']);
    expect(d.errors?.[0].error).toMatch(/path/);
  });

  it('keeps the constraints and throttle of a rule whose condition throws: it grants nothing, and restricts as before', () => {
    const k = kernelOf(
      v2(`  - { id: open, effect: allow }
  - { id: web, effect: allow_with_constraints, when: 'args.url.startsWith("https://")', constraints: { egress: { allowHosts: [api.example.com] } } }
  - { id: slow, effect: throttle, when: 'args.n > 1', throttle: { limit: 1, window: 1m } }`),
    );
    // A list where a string was expected makes both conditions throw; the broad allow still admits the call.
    const d = k.decide(call({ args: { url: ['http://evil.com/'], n: 'x' } }));
    expect(d.effect).toBe('allow');
    expect(d.ruleIds).toEqual(['open']);
    expect(d.constraints.egress).toEqual([{ ruleId: 'web', allowHosts: ['api.example.com'] }]);
    expect(d.throttles).toEqual([{ ruleId: 'slow', limit: 1, windowMs: 60_000, per: 'principal' }]);
    expect(d.errors?.map((e) => e.ruleId)).toEqual(['slow', 'web']);
    expect(k.explain(call({ args: { url: ['http://evil.com/'], n: 'x' } })).decision).toEqual(d);
    // Under the default too.
    const alone = kernelOf(v2(`  - { id: web, effect: allow_with_constraints, when: 'args.url.startsWith("https://")', constraints: { maxArgBytes: 10 } }`, 'default: allow'));
    expect(alone.decide(call({ args: { url: 1 } }))).toMatchObject({ effect: 'allow', ruleIds: [], constraints: { maxArgBytes: 10 } });
  });

  it('treats a non-bool value as an error', () => {
    const d = k.decide(call({ args: { path: '/tmp/ws/x', count: 1, maybe: 'yes' }, labels: {} }));
    expect(d.errors).toContainEqual({ ruleId: 'non-bool', error: 'the condition gave a string, not a bool' });
  });

  it('uses the epoch when the input has no time', () => {
    expect(k.decide(call({ args: { path: '/tmp/ws/a', count: 0 }, labels: {}, now: undefined })).reason).toBe('night');
  });

  it('lists a tool unless a call could never pass', () => {
    const listing = { tenant: 'acme', principal: 'alice', server: 'fs', tool: 'fs__read_file', annotations: undefined, labels: { env: 'dev' } };
    expect(k.mayList(listing)).toBe(true); // allow-ws may match, deny-etc and hours may not
    const strict = kernelOf(v2(`  - { id: allow-ws, effect: allow, when: 'pathUnder(args.path, "/tmp/ws")' }\n  - { id: no-bob, effect: deny, when: 'principal == "bob"' }`));
    expect(strict.mayList(listing)).toBe(true);
    expect(strict.mayList({ ...listing, principal: 'bob' })).toBe(false);
    const none = kernelOf(v2(`  - { id: never, effect: deny, when: 'labels.missing == "x"' }\n  - { id: ok, effect: allow }`));
    expect(none.mayList(listing)).toBe(false); // the condition throws whatever the call: deny always matches
    expect(kernelOf(v2('  - { id: maybe, effect: allow, when: "args.x == 1" }')).mayList(listing)).toBe(true);
    expect(kernelOf(v2('  - { id: maybe, effect: allow, when: "principal == \\"bob\\"" }')).mayList(listing)).toBe(false);
  });
});

describe('kernel v2: explain', () => {
  it('lists every rule in id order, with why, the condition value or error, and decide\'s decision', () => {
    const k = kernelOf(
      v2(`  - { id: c-deny, match: { servers: [web] }, effect: deny }
  - { id: a-allow, effect: allow, when: 'args.n > 1' }
  - { id: b-approve, match: { principals: [bob] }, effect: require_approval }
  - { id: d-deny, effect: deny, when: 'args.missing == 1' }`),
    );
    const input = call({ args: { n: 2 } });
    const explained = k.explain(input);
    expect(explained.decision).toEqual(k.decide(input));
    expect(explained.rules).toEqual([
      { id: 'a-allow', effect: 'allow', matched: true, why: 'matched', when: { expression: 'args.n > 1', value: true } },
      { id: 'b-approve', effect: 'require_approval', matched: false, why: 'principal alice is not one of [bob]' },
      { id: 'c-deny', effect: 'deny', matched: false, why: 'server fs is not one of [web]' },
      { id: 'd-deny', effect: 'deny', matched: true, why: 'matched: its condition failed, which counts as a match for deny', when: { expression: 'args.missing == 1', error: expect.stringMatching(/missing/) } },
    ]);
  });
});

describe('policy files v2', () => {
  it('rejects bad files with the file, line and key path', () => {
    // Every mistake is GH_ERR_POLICY_INVALID: what tells them apart is where each is, the key path and the line.
    const rejected = (text: string, path: PropertyKey[], line: number) => expect(() => policy(text)).toThrow(invalidPolicy('p.yaml', { path, line }));
    rejected(v2('  - { id: t, effect: throttle }'), ['rules', 0, 'throttle'], 4); // a throttle rule without throttle:
    rejected(v2('  - { id: t, effect: allow, throttle: { limit: 1, window: 1s } }'), ['rules', 0, 'throttle'], 4); // throttle: on another effect
    rejected(v2('  - { id: t, effect: deny, approval: { ttl: 1m } }'), ['rules', 0, 'approval'], 4);
    rejected(v2('  - { id: t, effect: require_approval, approval: { ttl: soon } }'), ['rules', 0, 'approval', 'ttl'], 4);
    rejected('version: 2\nkind: overlay\ndefault: allow\n', ['default'], 3);
    rejected(v2('  - id: t\n    effect: deny\n    when: "args.x +"'), ['rules', 0, 'when'], 6); // does not parse
    rejected(v2('  - id: t\n    effect: deny\n    when: "1 + 2"'), ['rules', 0, 'when'], 6); // not a bool
    rejected(v2('  - id: t\n    effect: deny\n    when: "nosuchvar == 1"'), ['rules', 0, 'when'], 6); // an unknown variable
    rejected(v2('  - { id: t, effect: allow, constraints: { paths: { args: [p] } } }'), ['rules', 0, 'constraints', 'paths'], 4);
    rejected(v2('  - { id: t, effect: allow, constraints: { redact: { result: ["/(a+)+$/"] } } }'), ['rules', 0, 'constraints', 'redact', 'result', 0], 4);
    rejected(v2('  - { id: t, effect: allow, match: { colour: red } }'), ['rules', 0, 'match', 'colour'], 4);
    // A rule is about tool calls or about resources and prompts, not both.
    rejected(v2('  - { id: t, effect: allow, match: { tools: ["*"], resources: ["*"] } }'), ['rules', 0, 'match'], 4);
    // A malformed redact field path used to load, then fail every call the rule applied to.
    rejected(v2('  - { id: t, effect: allow, constraints: { redact: { args: ["auth..token"] } } }'), ['rules', 0, 'constraints', 'redact', 'args', 0], 4);
    rejected(v2('  - { id: t, effect: allow, constraints: { redact: { result: ["secret."] } } }'), ['rules', 0, 'constraints', 'redact', 'result', 0], 4);
    // An allowHosts entry that is no host pattern would match nothing, silently: refused at load instead.
    rejected(v2('  - { id: t, effect: allow, constraints: { egress: { allowHosts: ["https://api.example.com/v1"] } } }'), ['rules', 0, 'constraints', 'egress', 'allowHosts', 0], 4);
    rejected(v2('  - { id: t, effect: allow, constraints: { egress: { allowHosts: ["10.0.0.0/33"] } } }'), ['rules', 0, 'constraints', 'egress', 'allowHosts', 0], 4);
    expect(policy(v2('  - { id: t, effect: allow, constraints: { egress: { allowHosts: ["*", "*.example.com", "api.example.com", "10.0.0.0/8", "[::1]", "fd00::/8", "127.0.0.1"] } } }')).rules).toHaveLength(1);
  });

  it('accepts durations as strings, and milliseconds as numbers', () => {
    const rules = policy(v2('  - { id: a, effect: allow_with_constraints, constraints: { timeoutMs: 1500 } }\n  - { id: b, effect: allow_with_constraints, constraints: { timeoutMs: 2m } }')).rules;
    expect(rules.map((r) => r.constraints?.timeoutMs)).toEqual([1500, 120_000]);
  });

  it('keeps rule ids unique across files, naming both', () => {
    expect(() => mergePolicySources([policy(v2('  - { id: x, effect: allow }'), 'a.yaml'), policy('version: 2\nkind: overlay\nrules: [{ id: x, effect: deny }]', 'b.yaml')])).toThrow(
      coded('GH_ERR_POLICY_INVALID', { problems: [expect.objectContaining({ file: 'a.yaml', path: ['rules', 0, 'id'] }), expect.objectContaining({ file: 'b.yaml', path: ['rules', 0, 'id'] })] }),
    );
  });

  it('takes the strictest default of the base files', () => {
    const bundle = mergePolicySources([policy('version: 2\ndefault: allow\n', 'a.yaml'), policy('version: 1\ndefault: require_approval\n', 'b.yaml'), policy('version: 2\nkind: overlay\n', 'c.yaml')]);
    expect(bundle.default).toBe('require_approval');
  });

  it('loads directories: their yaml files, sorted, without *_test files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-policies-'));
    mkdirSync(join(dir, 'packs'));
    writeFileSync(join(dir, 'packs', 'b.yml'), 'version: 2\nkind: overlay\nrules: [{ id: from-b, effect: deny, match: { tools: ["x__*"] } }]\n');
    writeFileSync(join(dir, 'packs', 'a.yaml'), 'version: 2\nkind: overlay\nrules: [{ id: from-a, effect: allow }]\n');
    writeFileSync(join(dir, 'packs', 'a_test.yaml'), 'not: a policy\n');
    writeFileSync(join(dir, 'packs', 'README.md'), '# not a policy\n');
    writeFileSync(join(dir, 'base.yaml'), 'version: 2\ndefault: deny\n');
    expect(policyFilesIn([join(dir, 'base.yaml'), join(dir, 'packs')]).map((f) => f.slice(dir.length))).toEqual(['/base.yaml', '/packs/a.yaml', '/packs/b.yml']);
    const bundle = loadPolicyFiles([join(dir, 'base.yaml'), join(dir, 'packs')]);
    expect(bundle.rules.map((r) => r.id)).toEqual(['from-a', 'from-b']);
    expect(new Kernel(bundle).decide(call({ server: 'x', tool: 'x__y' })).effect).toBe('deny');
    expect(() => loadPolicyFiles([join(dir, 'missing.yaml')])).toThrow(invalidPolicy(join(dir, 'missing.yaml'), { path: [] }));
  });

  it('reads version 1 files as before, and keeps them apart from v2-only keys', () => {
    const v1 = policy('version: 1\nrules:\n  - { id: r, effect: allow_with_constraints, constraints: { timeoutMs: 10, maxOutputBytes: 5 } }\n');
    expect(v1.rules[0]).toEqual({ id: 'r', match: {}, effect: 'allow_with_constraints', constraints: { timeoutMs: 10, maxOutputBytes: 5 } });
    expect(() => policy('version: 1\nrules:\n  - { id: r, effect: throttle }\n')).toThrow(invalidPolicy('p.yaml', { path: ['rules', 0, 'effect'], line: 3 }));
    expect(() => policy('version: 1\nrules:\n  - { id: r, effect: allow, when: "true" }\n')).toThrow(invalidPolicy('p.yaml', { path: ['rules', 0, 'when'], line: 3 }));
  });
});

describe('kernel v2: resources and prompts', () => {
  const read = (uri: string, over: Partial<DecisionInput> = {}) => call({ tool: `resources/read ${uri}`, kind: 'resource', method: 'resources/read', uri, ...over });
  const prompt = (name: string, over: Partial<DecisionInput> = {}) => call({ tool: `prompts/get ${name}`, kind: 'prompt', method: 'prompts/get', prompt: name, ...over });
  const k = kernelOf(
    v2(
      [
        '  - { id: tools, match: { tools: ["*"] }, effect: allow }',
        '  - { id: read-only, match: { annotations: { readOnlyHint: false } }, effect: require_approval }',
        '  - { id: docs, match: { resources: ["file:///docs/*"] }, effect: allow }',
        '  - { id: review, match: { prompts: ["fs__review"] }, effect: allow }',
        '  - { id: fs-anything, match: { servers: [fs] }, when: \'kind == "resource" && uri.endsWith(".key")\', effect: deny }',
      ].join('\n'),
    ),
  );

  it('applies a rule only to the kinds of request it names: tools, resources, prompts, or every one', () => {
    expect(k.decide(read('file:///docs/a.md'))).toMatchObject({ effect: 'allow', ruleIds: ['docs'] });
    // Neither the tools glob nor the annotations rule (whose undeclared readOnlyHint is false) reaches a resource read.
    expect(k.decide(read('file:///etc/passwd'))).toMatchObject({ effect: 'deny', ruleIds: [] });
    expect(k.decide(prompt('fs__review'))).toMatchObject({ effect: 'allow', ruleIds: ['review'] });
    expect(k.decide(prompt('fs__other')).effect).toBe('deny');
    // A rule that names no kind applies to every request; its condition reads the kind and the URI.
    expect(k.decide(read('file:///docs/server.key'))).toMatchObject({ effect: 'deny', ruleIds: ['fs-anything', 'docs'] });
    // A tool call is untouched by the resource and prompt rules.
    expect(k.decide(call({ tool: 'fs__review', annotations: { readOnlyHint: true } }))).toMatchObject({ effect: 'allow', ruleIds: ['tools'] });
  });

  it('lists a resource unless a read could never be allowed, reading the URI (known when listing) but not the method', () => {
    const listing = (uri: string) => ({ ...read(uri), method: undefined });
    expect(k.mayList(listing('file:///docs/a.md'))).toBe(true);
    expect(k.mayList(listing('file:///docs/a.key'))).toBe(false);
    expect(k.mayList(listing('file:///etc/passwd'))).toBe(false);
    const subscribe = kernelOf(v2('  - { id: r, match: { resources: ["*"] }, effect: allow }\n  - { id: s, match: { resources: ["*"] }, when: \'method == "resources/subscribe"\', effect: deny }'));
    expect(subscribe.mayList(listing('file:///x'))).toBe(true);
    expect(subscribe.decide(read('file:///x', { method: 'resources/subscribe' })).effect).toBe('deny');
  });

  it('explains why a rule about other requests or other URIs did not match', () => {
    const rules = Object.fromEntries(k.explain(read('file:///etc/passwd')).rules.map((r) => [r.id, r.why]));
    expect(rules.tools).toBe('the rule is about tool calls, and this is resource file:///etc/passwd');
    expect(rules.docs).toBe('resource file:///etc/passwd is not one of [file:///docs/*]');
    expect(rules.review).toBe('the rule is about prompts, and this is resource file:///etc/passwd');
    expect(k.explain(call()).rules.find((r) => r.id === 'docs')?.why).toBe('the rule is about resources, and this is a tool call');
  });

  it('keeps the bundle\'s tool overrides off other requests', () => {
    const overridden = kernelOf(`version: 2\ndefault: deny\ntools:\n  "*": { riskTags: [secrets] }\nrules:\n  - { id: no-secrets, match: { riskTags: [secrets] }, effect: deny }\n  - { id: all, effect: allow }\n`);
    expect(overridden.decide(call()).effect).toBe('deny');
    expect(overridden.decide(read('file:///x'))).toMatchObject({ effect: 'allow', ruleIds: ['all'] });
  });
});
