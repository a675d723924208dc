import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Kernel } from '../../src/kernel/kernel.ts';
import { mergePolicySources, type PolicySource } from '../../src/kernel/bundle.ts';
import { EFFECTS, type Effect } from '../../src/kernel/effect.ts';
import type { PolicyRule, RuleMatch, ToolOverride } from '../../src/kernel/policy-schema.ts';
import type { Constraints } from '../../src/protocol/constraints.ts';
import type { DecisionInput } from '../../src/kernel/decision.ts';

const SERVERS = ['fs', 'web', 'db'];
const TOOL_NAMES = ['read', 'write', 'delete'];
const TOOLS = SERVERS.flatMap((s) => TOOL_NAMES.map((t) => `${s}__${t}`));
const PRINCIPALS = ['alice', 'bob', 'svc-1'];
const TENANTS = ['acme', 'other'];
const TAGS = ['pii', 'read', 'write', 'destructive', 'open-world'];
const RANK: Record<Effect, number> = { deny: 4, require_approval: 3, throttle: 2, allow_with_constraints: 1, allow: 0 };
/** True, false, throwing (missing keys, bad URLs), non-bool, and call-dependent conditions. */
const CONDITIONS = [
  'args.n > 5',
  'principal == "bob"',
  'has(args.path) && pathUnder(args.path, "/tmp")',
  'args.missing == 1',
  'hostMatches(hostOf(args.url), "*.example.com")',
  'labels.env == "prod"',
  'args.n',
  'now.getHours() < 12',
  '"read" in riskTags',
  'annotations.readOnlyHint',
  'tool.endsWith("__read") || tenant == "other"',
];

const sub = <T>(items: readonly T[]) => fc.subarray([...items], { minLength: 1 });
const hints = fc.record({ readOnlyHint: fc.boolean(), destructiveHint: fc.boolean(), idempotentHint: fc.boolean(), openWorldHint: fc.boolean() }, { requiredKeys: [] });

const constraintsArb = (id: string) =>
  fc.record(
    {
      timeoutMs: fc.integer({ min: 1, max: 100_000 }),
      maxOutputBytes: fc.integer({ min: 1, max: 1_000_000 }),
      paths: fc.constant([{ ruleId: id, allow: [`/tmp/${id}/**`] }]),
      egress: fc.constant([{ ruleId: id, allowHosts: [`${id}.example.com`] }]),
      redact: fc.record({ args: sub(['password', 'token', '/sk-[a-z]{8,}/']), result: fc.constant([]) }),
      maxCallsPerSession: fc.integer({ min: 1, max: 50 }).map((limit) => [{ ruleId: id, limit }]),
    },
    { requiredKeys: [] },
  );

/** A rule with any criteria: globs, hints, tags, labels and conditions included. */
const ruleArb = (id: string): fc.Arbitrary<PolicyRule> =>
  fc
    .record(
      {
        effect: fc.constantFrom(...EFFECTS),
        servers: fc.option(sub([...SERVERS, 'w*', '*']), { nil: undefined }),
        tools: fc.option(sub([...TOOLS, '*__read', 'fs__*']), { nil: undefined }),
        principals: fc.option(sub([...PRINCIPALS, 'svc-*']), { nil: undefined }),
        tenants: fc.option(sub(TENANTS), { nil: undefined }),
        annotations: fc.option(hints, { nil: undefined }),
        riskTags: fc.option(sub(TAGS), { nil: undefined }),
        labels: fc.option(fc.constantFrom({ env: ['prod'] }, { env: ['prod', 'dev'] }, { team: ['core'] }), { nil: undefined }),
        when: fc.option(fc.constantFrom(...CONDITIONS), { nil: undefined, freq: 2 }),
        constraints: fc.option(constraintsArb(id), { nil: undefined }),
        reason: fc.option(fc.constantFrom('because', 'policy says so'), { nil: undefined }),
        remediation: fc.option(fc.constantFrom('try read', 'ask ops'), { nil: undefined }),
        limit: fc.integer({ min: 1, max: 100 }),
      },
      { requiredKeys: ['effect', 'limit'] },
    )
    .map(({ effect, servers, tools, principals, tenants, annotations, riskTags, labels, when, constraints, reason, remediation, limit }) => {
      const rule: PolicyRule = { id, effect, match: strip({ servers, tools, principals, tenants, annotations, riskTags, labels }) as RuleMatch };
      if (when) rule.when = when;
      if (constraints) rule.constraints = constraints as Constraints;
      if (reason) rule.reason = reason;
      if (remediation) rule.remediation = remediation;
      if (effect === 'throttle') rule.throttle = { limit, windowMs: 60_000, per: 'principal' };
      if (effect === 'require_approval') rule.approval = { ttlMs: limit * 1000 };
      return rule;
    });

const rulesArb: fc.Arbitrary<PolicyRule[]> = fc
  .uniqueArray(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 0, maxLength: 12 })
  .chain((ids) => (ids.length ? fc.tuple(...ids.map(ruleArb)).map((rules) => [...rules]) : fc.constant([] as PolicyRule[])));

const inputArb = (listing: boolean): fc.Arbitrary<DecisionInput> =>
  fc
    .record({
      server: fc.constantFrom(...SERVERS),
      tool: fc.constantFrom(...TOOL_NAMES),
      principal: fc.constantFrom(...PRINCIPALS, 'svc-2'),
      tenant: fc.constantFrom(...TENANTS),
      annotations: fc.option(hints, { nil: undefined }),
      riskTags: fc.option(sub(['pii', 'secrets']), { nil: undefined }),
      labels: fc.option(fc.constantFrom({ env: 'prod' }, { env: 'dev', team: 'core' }), { nil: undefined }),
      args: fc.record(
        { n: fc.oneof(fc.integer({ min: -10, max: 20 }), fc.double({ noNaN: true, min: -10, max: 20 }), fc.constant('x')), path: fc.constantFrom('/tmp/a', '/etc/x', '/tmp/%2e%2e/etc', 'rel'), url: fc.constantFrom('https://a.example.com/', 'http://x.com@evil.com', 'nope') },
        { requiredKeys: [] },
      ),
      now: fc.integer({ min: 0, max: 4_000_000_000_000 }),
    })
    .map(({ server, tool, args, ...rest }) => ({ ...rest, server, tool: `${server}__${tool}`, args: listing ? undefined : args }) as DecisionInput);

function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

const source = (file: string, rules: PolicyRule[], extra: Partial<PolicySource> = {}): PolicySource => ({ file, version: 2, kind: 'base', rules, tools: {}, ...extra });

describe('kernel properties', () => {
  it('explain agrees with decide, for calls and listings', () => {
    fc.assert(
      fc.property(rulesArb, fc.constantFrom<Effect>('deny', 'allow', 'require_approval'), inputArb(false), inputArb(true), (rules, defaultEffect, input, listing) => {
        const kernel = new Kernel(mergePolicySources([source('p.yaml', rules, { default: defaultEffect })]));
        for (const x of [input, listing]) {
          const explained = kernel.explain(x);
          expect(explained.decision).toEqual(kernel.decide(x));
          expect(explained.rules.map((r) => r.id)).toEqual(rules.map((r) => r.id).sort());
          expect(explained.rules.filter((r) => r.matched).map((r) => r.id).sort()).toEqual([...explained.decision.ruleIds].sort());
        }
      }),
      { numRuns: 300 },
    );
  });

  it('lets the strictest matching rule win, whatever the rule order or ids', () => {
    // Conditions and globs aside, so an independent oracle can say which rules match.
    const plainRule = (id: string) =>
      fc.record({ effect: fc.constantFrom(...EFFECTS), servers: fc.option(sub(SERVERS), { nil: undefined }), principals: fc.option(sub(PRINCIPALS), { nil: undefined }) }).map(
        ({ effect, servers, principals }): PolicyRule => ({ id, effect, match: strip({ servers, principals }), ...(effect === 'throttle' ? { throttle: { limit: 1, windowMs: 1000, per: 'tool' as const } } : {}) }),
      );
    const plainRules = fc.uniqueArray(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 1, maxLength: 10 }).chain((ids) => fc.tuple(...ids.map(plainRule)));
    fc.assert(
      fc.property(plainRules, inputArb(false), fc.func(fc.integer()), (rules, input, shuffleKey) => {
        const decision = new Kernel(mergePolicySources([source('p.yaml', rules)])).decide(input);
        const matching = rules.filter((r) => (!r.match.servers || r.match.servers.includes(input.server)) && (!r.match.principals || r.match.principals.includes(input.principal)));
        const expected = matching.length ? matching.reduce((a, r) => (RANK[r.effect] > RANK[a] ? r.effect : a), 'allow' as Effect) : 'deny';
        expect(decision.effect).toBe(expected);
        expect([...decision.ruleIds].sort()).toEqual(matching.map((r) => r.id).sort());
        const ranks = decision.ruleIds.map((id) => RANK[rules.find((r) => r.id === id)!.effect]);
        expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
        // Renaming every rule (which reorders them) and shuffling the files changes nothing but the ids.
        const renamed = rules.map((r) => ({ ...r, id: `n${Math.abs(shuffleKey(r.id))}.${r.id}` }));
        const halves = [renamed.filter((_, i) => i % 2), renamed.filter((_, i) => i % 2 === 0)];
        const again = new Kernel(mergePolicySources([source('b.yaml', halves[0]), source('a.yaml', halves[1], { kind: 'overlay' })])).decide(input);
        expect(again.effect).toBe(decision.effect);
        expect(again.ruleIds.map((id) => id.split('.')[1]).sort()).toEqual([...decision.ruleIds].sort());
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same snapshot for base files and overlays merged in any order', () => {
    const override: fc.Arbitrary<ToolOverride> = fc.record({ annotations: hints, riskTags: sub(TAGS) }, { requiredKeys: [] });
    const overrides = fc.dictionary(fc.constantFrom('fs__read', 'fs__*', 'web__write', '*'), override, { maxKeys: 3 });
    const filesArb = rulesArb.chain((rules) =>
      fc.tuple(
        fc.constant(rules),
        fc.array(fc.tuple(fc.boolean(), overrides, fc.option(fc.constantFrom<Effect>('deny', 'allow', 'require_approval', 'allow_with_constraints'), { nil: undefined })), { minLength: 1, maxLength: 4 }),
      ),
    );
    fc.assert(
      fc.property(filesArb, fc.func(fc.integer()), ([rules, files], order) => {
        const sources = files.map(([overlay, tools, defaultEffect], i) =>
          source(`f${i}.yaml`, rules.filter((_, r) => r % files.length === i), overlay ? { kind: 'overlay', tools } : { tools, default: defaultEffect }),
        );
        const shuffled = [...sources].sort((a, b) => order(a.file) - order(b.file) || (a.file < b.file ? -1 : 1));
        const one = mergePolicySources(sources);
        const two = mergePolicySources(shuffled);
        expect(two.snapshot).toBe(one.snapshot);
        expect(two.tools).toEqual(one.tools);
        expect(two.default).toBe(one.default);
      }),
      { numRuns: 300 },
    );
  });
});
