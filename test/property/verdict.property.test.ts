// Explain agrees with the live gateway. Random small bundles (every effect, globs, hints, risk tags, labels, CEL
// conditions, tool overrides, path/egress/size constraints) and random upstream tools (annotations from the
// upstream, overridden by the config; labels; HTTP upstreams with their URL) decide random calls (paths, URLs,
// sizes) twice: through the real CallPipeline over the real catalog, kernel, approval service, scheduler and
// executor, in process; and the way `policy explain` and `policy test` do, on the catalog the gateway records and
// the CLI reads back. Effect, rule ids and refusal code must be the same, and `policy replay` of the decisions the
// live path recorded must change none.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { writeDataFile } from '../../adapters/file/atomic-file.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { mergePolicySources } from '../../src/kernel/bundle.ts';
import { EFFECTS, type Effect } from '../../src/kernel/effect.ts';
import type { PolicyRule, RuleMatch, ToolOverride } from '../../src/kernel/policy-schema.ts';
import type { Constraints } from '../../src/protocol/constraints.ts';
import { explainCall } from '../../src/kernel/verdict.ts';
import { ApprovalService } from '../../src/approvals/service.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import { CallPipeline } from '../../src/call/pipeline.ts';
import { ToolCatalog } from '../../src/call/catalog.ts';
import { toolFactsFromConfig } from '../../src/kernel/tool-facts.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { GatehouseConfig } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log.ts';
import type { Upstream } from '../../src/ports.ts';
import type { CallToolResult, ToolAnnotations, ToolDefinition } from '../../src/protocol/mcp.ts';
import { callSchema, resolveCall } from '../../src/kernel/authoring/call.ts';
import { CATALOG_FILE, readRecordedCatalog, recordCatalog, recordedFacts } from '../../src/kernel/authoring/recorded-catalog.ts';
import { sameRuleIds } from '../../src/kernel/authoring/explanation.ts';
import { replayDecisions } from '../../src/kernel/authoring/replay.ts';
import type { AuditEvent, AuditRecord } from '../../src/protocol/audit-record.ts';

const NOW = 1_800_000_000_000;
const SERVERS = ['fs', 'web', 'db'] as const;
const TOOL_NAMES = ['read', 'write', 'delete', 'fetch'];
const PRINCIPALS = ['alice', 'bob', 'svc-1'];
const TAGS = ['pii', 'read', 'write', 'destructive', 'open-world', 'payments'];
const HTTP_URLS = ['https://api.example.com/mcp', 'http://127.0.0.1:9/mcp', 'https://user:pw@mcp.example.org/x?token=t'];
const CONDITIONS = ['has(args.n) && args.n > 5', 'principal == "bob"', 'has(args.path) && pathUnder(args.path, "/ws")', 'args.missing == 1', 'hostMatches(hostOf(args.url), "*.example.com")', 'labels.env == "prod"', 'annotations.destructiveHint', '"payments" in riskTags'];
const PATHS = ['/ws/a.txt', '/ws/.ssh/id', '/etc/passwd', '/ws/../etc/passwd', 'rel/x', '/WS/A', '/tmp/x', '/ws/sub/%2e%2e/%2e%2e/etc'];
const URLS = ['https://api.example.com/v1', 'https://evil.example.net/', 'http://127.0.0.1:8080/', 'file:///etc/passwd', 'https://x.example.com@evil.net/', 'not a url'];

const sub = <T>(items: readonly T[]) => fc.subarray([...items], { minLength: 1 });
const hints = fc.record({ readOnlyHint: fc.boolean(), destructiveHint: fc.boolean(), idempotentHint: fc.boolean(), openWorldHint: fc.boolean() }, { requiredKeys: [] });

const constraintsArb = (id: string): fc.Arbitrary<Constraints> =>
  fc.record(
    {
      timeoutMs: fc.constant(5_000),
      maxArgBytes: fc.integer({ min: 20, max: 200 }),
      paths: fc.record({ args: fc.option(sub(['path', 'paths']), { nil: undefined }), allow: fc.option(sub(['/ws/**', '/tmp/**', '**']), { nil: undefined }), deny: fc.option(sub(['**/.ssh/**', '/etc/**']), { nil: undefined }) }).map((p) => [{ ruleId: id, ...strip(p) }]),
      egress: fc.record({ args: fc.option(fc.constant<string[]>(['url']), { nil: undefined }), allowHosts: sub(['api.example.com', '*.example.com', '127.0.0.1', 'mcp.example.org']) }).map((e) => [{ ruleId: id, ...strip(e) }]),
      // Limits high enough that a run never uses them up: they are counted live, and explain does not count.
      maxCallsPerSession: fc.constant([{ ruleId: id, limit: 1_000_000 }]),
    },
    { requiredKeys: [] },
  );

const ruleArb = (id: string): fc.Arbitrary<PolicyRule> =>
  fc
    .record(
      {
        effect: fc.constantFrom(...EFFECTS),
        servers: fc.option(sub([...SERVERS, 'w*']), { nil: undefined }),
        tools: fc.option(sub(['fs__write', 'web__fetch', '*__delete', 'db__*']), { nil: undefined }),
        principals: fc.option(sub(PRINCIPALS), { nil: undefined }),
        annotations: fc.option(hints, { nil: undefined }),
        riskTags: fc.option(sub(TAGS), { nil: undefined }),
        labels: fc.option(fc.constantFrom({ env: ['prod'] }, { team: ['core'] }), { nil: undefined }),
        when: fc.option(fc.constantFrom(...CONDITIONS), { nil: undefined, freq: 3 }),
        constraints: fc.option(constraintsArb(id), { nil: undefined, freq: 2 }),
      },
      { requiredKeys: ['effect'] },
    )
    .map(({ effect, servers, tools, principals, annotations, riskTags, labels, when, constraints }) => {
      const rule: PolicyRule = { id, effect, match: strip({ servers, tools, principals, annotations, riskTags, labels }) as RuleMatch };
      if (when) rule.when = when;
      if (constraints && Object.keys(constraints).length > 0) rule.constraints = constraints;
      if (effect === 'throttle') rule.throttle = { limit: 1_000_000, windowMs: 60_000, per: 'principal' };
      return rule;
    });

/** Often a rule that bounds every call of a server, so that constraints bite in a good share of the calls. */
const boundsArb: fc.Arbitrary<PolicyRule[]> = fc.option(
  fc.record({ servers: sub(SERVERS), effect: fc.constantFrom<Effect>('allow_with_constraints', 'require_approval', 'allow'), constraints: constraintsArb('zz-bounds') }).map(({ servers, effect, constraints }) => [{ id: 'zz-bounds', effect, match: { servers }, constraints }]),
  { nil: [], freq: 3 },
);

const bundleArb = fc.record({
  rules: fc
    .tuple(fc.uniqueArray(fc.stringMatching(/^[a-y]{1,5}$/), { minLength: 0, maxLength: 8 }).chain((ids) => (ids.length ? fc.tuple(...ids.map(ruleArb)).map((r) => [...r]) : fc.constant([] as PolicyRule[]))), boundsArb)
    .map(([rules, bounds]) => [...rules, ...bounds]),
  default: fc.constantFrom<Effect>('deny', 'allow', 'require_approval', 'allow_with_constraints'),
  tools: fc.dictionary(fc.constantFrom('fs__write', 'web__*', '*__delete'), fc.record({ annotations: hints, riskTags: sub(TAGS) }, { requiredKeys: [] }) as fc.Arbitrary<ToolOverride>, { maxKeys: 2 }),
});

/** Per upstream: its tools' annotations as the upstream declares them, the config's overrides, labels, and (web) a URL. */
const upstreamsArb = fc.record({
  declared: fc.dictionary(fc.constantFrom(...SERVERS.flatMap((s) => TOOL_NAMES.map((t) => `${s}/${t}`))), hints, { maxKeys: 8 }),
  overrides: fc.dictionary(fc.constantFrom(...SERVERS.flatMap((s) => TOOL_NAMES.map((t) => `${s}/${t}`))), fc.record({ annotations: hints, riskTags: sub(TAGS) }, { requiredKeys: [] }), { maxKeys: 3 }),
  labels: fc.record({
    fs: fc.constantFrom<Record<string, string>>({}, { env: 'prod' }),
    web: fc.constantFrom<Record<string, string>>({ team: 'core' }, { env: 'dev' }),
    db: fc.constantFrom<Record<string, string>>({}, { env: 'prod', team: 'core' }),
  }),
  url: fc.constantFrom(...HTTP_URLS),
});

const callArb = fc.record({
  server: fc.constantFrom(...SERVERS),
  tool: fc.constantFrom(...TOOL_NAMES),
  principal: fc.constantFrom(...PRINCIPALS),
  args: fc.record(
    { path: fc.constantFrom(...PATHS), paths: fc.subarray(PATHS, { maxLength: 3 }), url: fc.constantFrom(...URLS), note: fc.string({ maxLength: 120 }), n: fc.integer({ min: 0, max: 10 }) },
    { requiredKeys: [] },
  ),
});

function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

type Upstreams = typeof upstreamsArb extends fc.Arbitrary<infer U> ? U : never;

function configOf(u: Upstreams): GatehouseConfig {
  const toolsOf = (server: string) => Object.fromEntries(Object.entries(u.overrides).filter(([k]) => k.startsWith(`${server}/`)).map(([k, v]) => [k.slice(server.length + 1), v]));
  return defaultConfig({
    upstreams: {
      fs: { command: 'unused', args: [], env: {}, timeout: 5_000, labels: u.labels.fs, tools: toolsOf('fs') },
      web: { url: u.url, headers: {}, timeout: 5_000, labels: u.labels.web, tools: toolsOf('web') },
      db: { command: 'unused', args: [], env: {}, timeout: 5_000, labels: u.labels.db, tools: toolsOf('db') },
    } as GatehouseConfig['upstreams'],
  });
}

/** An upstream that lists its tools and answers every call: whatever is refused, is refused by Gatehouse. */
function upstreamOf(server: string, u: Upstreams): Upstream {
  const tools: ToolDefinition[] = TOOL_NAMES.map((name) => {
    const annotations = u.declared[`${server}/${name}`];
    return { name, inputSchema: { type: 'object' }, ...(annotations ? { annotations } : {}) };
  });
  const answer: CallToolResult = { content: [{ type: 'text', text: 'ran' }] };
  return {
    name: server,
    ...(server === 'web' ? { url: u.url } : {}),
    state: 'ready',
    serverCapabilities: { tools: {} },
    start: async () => undefined,
    notify: async () => undefined,
    close: async () => undefined,
    request: async (method: string) => (method === 'tools/list' ? { tools } : answer),
  } as unknown as Upstream;
}

const dirs = mkdtempSync(join(tmpdir(), 'gh-verdict-property-'));
const approvalStore = new FileApprovalStore(join(dirs, 'approvals'));
afterAll(() => approvalStore.close());
/** The audit trail: only the decisions are kept, for replay. */
const decided: AuditRecord[] = [];
const audit = {
  accepting: true,
  record: (event: AuditEvent) => void (event.type === 'job.decided' && decided.push({ ...event, seq: decided.length + 1, prev: '', hash: '' } as AuditRecord)),
  flush: async () => undefined,
  written: async () => undefined,
} as unknown as AuditTrail;
const clock = { now: () => NOW, sleep: async () => undefined };

interface Outcome {
  decided: string;
  ruleIds: string[];
  effect: string;
  code: string | undefined;
}

/** The live verdict, read from what the client got: the decision in `gatehouse/job`, the code in `gatehouse/error`. */
function liveOutcome(result: CallToolResult): Outcome {
  const meta = result._meta as Record<string, any>;
  const job = meta['gatehouse/job'];
  const code = meta['gatehouse/error']?.code as string | undefined;
  const refused = code !== undefined && code !== 'GH_ERR_APPROVAL_PENDING';
  return { decided: job.decision, ruleIds: job.ruleIds, effect: refused ? 'deny' : job.decision, code: refused ? code : undefined };
}

describe('explain agrees with the live gateway', () => {
  it('on effect, rule ids and refusal code, for random bundles, tools and calls', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(bundleArb, upstreamsArb, fc.array(callArb, { minLength: 1, maxLength: 6 }), async (bundle, upstreams, calls) => {
        run++;
        const config = configOf(upstreams);
        const kernel = new Kernel(mergePolicySources([{ file: 'p.yaml', version: 2, kind: 'base', rules: bundle.rules, default: bundle.default, tools: bundle.tools }]));
        const store = new MemoryStore(clock);
        const bus = new MemoryBus();
        const jobs = new JobTracker(audit, clock);
        const scheduler = new Scheduler(bus, jobs, clock, 'gw');
        const live = new Map(SERVERS.map((s) => [s, upstreamOf(s, upstreams)] as const));
        const executor = new Executor(bus, store, clock, 'w', (name) => live.get(name as (typeof SERVERS)[number]));
        const catalog = new ToolCatalog(silentLogger, undefined, toolFactsFromConfig(config));
        for (const upstream of live.values()) await catalog.refresh(upstream);
        const pipeline = new CallPipeline({
          catalog,
          kernel,
          approvals: new ApprovalService(approvalStore, audit, clock as never, 60_000),
          scheduler,
          store,
          audit: audit,
          log: silentLogger,
          clock,
          options: { holdBudgetMs: 0, holdProgressEveryMs: 1_000, upstreamTimeoutMs: () => 5_000, placement: (server) => ({ pool: server, remote: false }), approvalHint: () => '', decisionBudgetMs: 1_000 },
        });
        scheduler.start();
        for (const server of SERVERS) executor.serve(server);
        // What the gateway records and the CLI reads back: the explain side decides on that, not on the live catalog.
        const dataDir = join(dirs, `run-${run}`);
        writeDataFile(dataDir, CATALOG_FILE, JSON.stringify(recordCatalog(catalog.entries(), NOW)));
        const recorded = readRecordedCatalog(dataDir)!;
        decided.length = 0;
        try {
          for (const c of calls) {
            const name = `${c.server}__${c.tool}`;
            const outcome = await pipeline.call({
              caller: { principal: c.principal, tenant: 'default', sessionId: `s${run}` },
              name,
              arguments: c.args,
              meta: undefined,
              reply: { signal: new AbortController().signal, progressToken: undefined, notify: () => undefined, ask: undefined },
            });
            if (!('result' in outcome)) throw new Error(`a JSON-RPC error: ${JSON.stringify(outcome.error)}`);
            const got = liveOutcome(outcome.result);

            const stated = callSchema.parse({ tool: name, principal: c.principal, args: c.args, now: NOW });
            const { explanation, verdict } = explainCall(kernel, resolveCall(stated, recordedFacts(recorded, stated)));
            const context = JSON.stringify({ call: c, live: got, explained: { decision: explanation.decision.effect, ruleIds: explanation.decision.ruleIds, verdict: verdict.effect, code: verdict.code } });
            expect(got.decided, context).toBe(explanation.decision.effect);
            expect(sameRuleIds(got.ruleIds, explanation.decision.ruleIds), context).toBe(true);
            expect(got.effect, context).toBe(verdict.effect);
            expect(got.code, context).toBe(verdict.refusal?.code ?? (verdict.code === 'GH_ERR_POLICY_DENIED' ? 'GH_ERR_POLICY_DENIED' : undefined));
          }
          // Replayed under the same bundle, on the facts recorded with each decision, no verdict changes.
          const replayed = await replayDecisions(decided, kernel);
          expect(replayed, JSON.stringify(replayed.groups)).toMatchObject({ decisions: calls.length, replayed: calls.length, changed: 0, sameEffectDifferentRules: 0 });
        } finally {
          executor.stop();
          scheduler.stop();
        }
      }),
      { numRuns: 120 },
    );
  }, 180_000);
});
