// Session-aware rules in the kernel and the pure session state: CEL's `session`, the `repeat` and `budget` rule
// options, the admission that checks and counts a call in one step, and the keying of sessions per era.
import { describe, expect, it } from 'vitest';
import { Kernel } from '../../src/kernel/kernel.ts';
import { mergePolicySources, parsePolicy } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import type { BudgetSpec, DecisionInput, RepeatSpec, SessionView } from '../../src/kernel/decision.ts';
import { admit, addResult, emptyRecord, viewOf, type CallAdmission } from '../../src/session/admission.ts';
import { principalDayKey, sessionKeyOf } from '../../src/session/session-key.ts';
import { callSchema, resolveCall } from '../../src/kernel/authoring/call.ts';
import { runPolicyTests } from '../../src/kernel/authoring/test-runner.ts';
import { replayDecisions } from '../../src/kernel/authoring/replay.ts';
import type { SessionRecord } from '../../src/protocol/session-record.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { coded } from '../helpers/coded-errors.ts';
import { resolveConfig } from '../../src/config/load.ts';

const kernelOf = (rules: string, head = 'default: allow') => new Kernel(mergePolicySources([parsePolicy(parseYamlText('p.yaml', `version: 2\n${head}\nrules:\n${rules}`, 'GH_ERR_POLICY_INVALID'))]));
const session = (over: Partial<SessionView> = {}): SessionView => ({ id: 's1', calls: 0, tools: [], riskTags: [], labels: [], startedAt: 0, approvals: 0, client: { name: '', version: '' }, ...over });
const call = (over: Partial<DecisionInput> = {}): DecisionInput => ({ tenant: 't', principal: 'ann', server: 'fs', tool: 'fs__read', annotations: undefined, args: {}, now: 10_000, ...over });

describe('session in CEL', () => {
  const k = kernelOf(`
  - id: busy
    match: { tools: ["fs__write"] }
    when: 'session.calls >= 3 || "private-data" in session.labels'
    effect: deny
  - id: read-then-send
    match: { tools: ["web__post"] }
    when: '"fs__read" in session.tools && session.client.name == "agent" && now - session.startedAt < duration("1h")'
    effect: require_approval
  - id: plain
    match: { tools: ["fs__read"] }
    effect: allow`);

  it('knows at compile time whether a rule reads session, so that facts are loaded only then', () => {
    expect([k.readsSession, k.usesSession]).toEqual([true, true]);
    const plain = kernelOf('  - { id: a, match: { tools: ["x__*"] }, when: "args.size() > 0", effect: deny }');
    expect([plain.readsSession, plain.usesSession]).toEqual([false, false]);
    const counting = kernelOf('  - { id: a, match: {}, effect: allow, repeat: { limit: 3, window: 1m } }');
    expect([counting.readsSession, counting.usesSession]).toEqual([false, true]);
  });

  it('decides on the session facts of the input', () => {
    const write = call({ tool: 'fs__write' });
    expect(k.decide({ ...write, session: session({ calls: 2 }) }).effect).toBe('allow');
    expect(k.decide({ ...write, session: session({ calls: 3 }) }).ruleIds).toEqual(['busy']);
    expect(k.decide({ ...write, session: session({ labels: ['private-data'] }) }).effect).toBe('deny');
    const post = call({ server: 'web', tool: 'web__post', now: 3_600_000 });
    expect(k.decide({ ...post, session: session({ tools: ['fs__read'], client: { name: 'agent', version: '1' }, startedAt: 1 }) }).effect).toBe('require_approval');
    expect(k.decide({ ...post, session: session({ tools: ['fs__read'], client: { name: 'agent', version: '1' }, startedAt: 0 }) }).effect).toBe('allow');
    expect(k.decide({ ...post, session: session({ tools: ['fs__list'], client: { name: 'agent', version: '1' }, startedAt: 1 }) }).effect).toBe('allow');
  });

  it('reads an input without session facts as a session with no calls, starting now', () => {
    expect(k.decide(call({ tool: 'fs__write' })).effect).toBe('allow');
    const aged = kernelOf(`  - { id: old, match: {}, when: 'now - session.startedAt > duration("1h")', effect: deny }`);
    expect(aged.decide(call({ now: 10 * 3_600_000 })).effect).toBe('allow');
    expect(aged.decide(call({ now: 10 * 3_600_000, session: session({ startedAt: 0 }) })).effect).toBe('deny');
  });

  it('lists a tool whose rule reads session as it would a rule that reads args: the session may go the caller’s way', () => {
    expect(k.mayList({ tenant: 't', principal: 'ann', server: 'fs', tool: 'fs__write', annotations: undefined })).toBe(true);
  });

  it('lets policy test cases state the session, with defaults for what they leave out', () => {
    const stated = callSchema.parse({ tool: 'fs__write', session: { calls: 5 }, now: 7_000 });
    expect(stated.session).toEqual(session({ id: 'test-session', calls: 5, startedAt: 7_000 }));
    const report = runPolicyTests(k, [
      { name: 'busy', file: 'x', line: 1, input: stated, expect: { effect: 'deny', ruleIds: ['busy'] } },
      { name: 'fresh', file: 'x', line: 2, input: callSchema.parse({ tool: 'fs__write' }), expect: { effect: 'allow' } },
    ]);
    expect(report.failed).toBe(0);
    expect(resolveCall(stated, undefined).session?.calls).toBe(5);
  });

  it('replays a recorded decision with the session facts it was decided on', async () => {
    const record = (calls: number, effect: string): AuditRecord =>
      ({ seq: 1, at: 10, tenant: 't', type: 'job.decided', jobId: `J${calls}`, data: { effect, ruleIds: [], policySnapshot: 'x', reason: 'r', input: call({ tool: 'fs__write', session: session({ calls }) }) } }) as unknown as AuditRecord;
    const report = await replayDecisions([record(1, 'allow'), record(4, 'allow')], k);
    expect([report.replayed, report.unchanged, report.changed]).toEqual([2, 1, 1]);
  });
});

describe('rule options repeat and budget', () => {
  it('carries every matching rule’s repeat and budget on the decision, none on a deny', () => {
    const k = kernelOf(`
  - { id: loop, match: {}, effect: allow, repeat: { limit: 3, window: 10m } }
  - { id: spend, match: { tools: ["fs__*"] }, effect: allow_with_constraints, budget: { calls: 100, outputBytes: 5000, upstreamTime: 30s, distinctTools: 4, per: principal } }
  - { id: meter, match: { tools: ["fs__read"] }, effect: allow, budget: { calls: 10 } }`);
    const d = k.decide(call());
    expect(d.repeats).toEqual([{ ruleId: 'loop', limit: 3, windowMs: 600_000 }]);
    // Strictest rule first, as the decision's rule ids.
    expect(d.budgets).toEqual([
      { ruleId: 'spend', per: 'principal', calls: 100, outputBytes: 5000, upstreamTimeMs: 30_000, distinctTools: 4 },
      { ruleId: 'meter', per: 'session', calls: 10 },
    ]);
  });

  it('keeps a rule’s repeat and budget when its condition throws: an error never loosens a call', () => {
    const k = kernelOf('  - { id: loop, match: {}, when: "args.missing > 1", effect: allow, repeat: { limit: 1, window: 1m } }', 'default: allow');
    expect(k.decide(call()).repeats).toEqual([{ ruleId: 'loop', limit: 1, windowMs: 60_000 }]);
  });

  it('refuses a repeat or budget on a deny rule, and a budget that limits nothing', () => {
    expect(() => kernelOf('  - { id: a, match: {}, effect: deny, repeat: { limit: 1, window: 1m } }')).toThrow(coded('GH_ERR_POLICY_INVALID'));
    expect(() => kernelOf('  - { id: a, match: {}, effect: allow, budget: { per: session } }')).toThrow(coded('GH_ERR_POLICY_INVALID'));
    expect(() => kernelOf('  - { id: a, match: {}, effect: allow, budget: { calls: 0 } }')).toThrow(coded('GH_ERR_POLICY_INVALID'));
  });
});

describe('admission: check and count in one step', () => {
  const repeat: RepeatSpec = { ruleId: 'loop', limit: 3, windowMs: 60_000 };
  const base = (over: Partial<CallAdmission> = {}): CallAdmission => ({ sessionKey: 's', tool: 'fs__read', toolCall: true, argsDigest: 'd1', riskTags: ['read'], approved: false, now: 1_000, repeats: [], budgets: [], ...over });
  /** Runs calls one after another against one pair of records, as the port would. */
  const run = (calls: CallAdmission[], records: (SessionRecord | undefined)[] = [undefined, undefined]) => {
    const codes = calls.map((c) => {
      const { next, refusal } = admit(records, c, true);
      next.forEach((r, i) => r && (records[i] = r));
      return refusal ? refusal.code : 'ok';
    });
    return { codes, records };
  };

  it('breaks a loop: the same tool and arguments more than limit times within the window is refused, others are not', () => {
    const { codes, records } = run([...Array.from({ length: 4 }, () => base({ repeats: [repeat] })), base({ repeats: [repeat], argsDigest: 'd2' }), base({ repeats: [repeat], tool: 'fs__list' })]);
    expect(codes).toEqual(['ok', 'ok', 'ok', 'GH_ERR_REPEATED_CALL', 'ok', 'ok']);
    expect(records[0]?.calls).toBe(5); // the refused call is not counted
  });

  it('tells the model when the loop breaker would let the call through again, as the window slides', () => {
    const records: (SessionRecord | undefined)[] = [undefined, undefined];
    run([0, 10_000, 20_000].map((t) => base({ repeats: [repeat], now: t })), records);
    const refused = admit(records, base({ repeats: [repeat], now: 30_000 }), true).refusal!;
    expect(refused.detail).toEqual({ ruleId: 'loop', retryAfterMs: 30_000 });
    expect(admit(records, base({ repeats: [repeat], now: 60_001 }), true).refusal).toBeUndefined();
  });

  it('trips a calls budget exactly at its limit and says what is left of the others', () => {
    const budget: BudgetSpec = { ruleId: 'b', per: 'session', calls: 2, outputBytes: 100 };
    const { codes, records } = run([base({ budgets: [budget] }), base({ budgets: [budget] })]);
    expect(codes).toEqual(['ok', 'ok']);
    const refused = admit(records, base({ budgets: [budget] }), true).refusal!;
    expect(refused.code).toBe('GH_ERR_BUDGET_EXHAUSTED');
    expect(refused.detail).toEqual({ ruleId: 'b', per: 'session', left: { calls: 0, outputBytes: 100 } });
  });

  it('counts output bytes and upstream time when the result comes back, and refuses the next call once used up', () => {
    const budget: BudgetSpec = { ruleId: 'b', per: 'session', outputBytes: 100, upstreamTimeMs: 50 };
    const { records } = run([base({ budgets: [budget] })]);
    const after = addResult(records, [budget], { sessionKey: 's', now: 1 }, { outputBytes: 60, upstreamMs: 10 });
    expect(admit(after, base({ budgets: [budget] }), true).refusal).toBeUndefined();
    const used = addResult(after, [budget], { sessionKey: 's', now: 1 }, { outputBytes: 40, upstreamMs: 10 });
    expect(admit(used, base({ budgets: [budget] }), true).refusal?.detail.left).toEqual({ outputBytes: 0, upstreamTimeMs: 30 });
  });

  it('counts distinct tools: a tool already called costs nothing, a new one past the limit is refused', () => {
    const budget: BudgetSpec = { ruleId: 'b', per: 'session', distinctTools: 2 };
    const { codes } = run(['a', 'b', 'a', 'c', 'b'].map((t) => base({ tool: `x__${t}`, budgets: [budget] })));
    expect(codes).toEqual(['ok', 'ok', 'ok', 'GH_ERR_BUDGET_EXHAUSTED', 'ok']);
  });

  it('counts a resource, prompt or completion request as a call, not as a tool', () => {
    const budget: BudgetSpec = { ruleId: 'b', per: 'session', distinctTools: 1 };
    const { codes, records } = run([base({ tool: 'resources/read file:///a.md', toolCall: false, budgets: [budget] }), base({ budgets: [budget] })]);
    expect(codes).toEqual(['ok', 'ok']);
    expect(viewOf(records[0], 's', 0)).toMatchObject({ calls: 2, tools: ['fs__read'] });
  });

  it('counts a per-principal budget in the principal’s day, whatever the session', () => {
    const budget: BudgetSpec = { ruleId: 'b', per: 'principal', calls: 1 };
    const records: (SessionRecord | undefined)[] = [undefined, undefined];
    expect(run([base({ dayKey: 'd', budgets: [budget] })], records).codes).toEqual(['ok']);
    // Another session (a re-run initialize), the same day record.
    const other: (SessionRecord | undefined)[] = [undefined, records[1]];
    expect(run([base({ sessionKey: 's2', dayKey: 'd', budgets: [budget] })], other).codes).toEqual(['GH_ERR_BUDGET_EXHAUSTED']);
  });

  it('peeks without counting', () => {
    const { next, refusal } = admit([undefined, undefined], base({ repeats: [repeat] }), false);
    expect(refusal).toBeUndefined();
    expect(next).toEqual([undefined, undefined]);
  });

  it('keeps the session facts rules read: calls, tools, risk tags, approvals, client, first call', () => {
    const { records } = run([base({ now: 5, client: { name: 'agent', version: '2' } }), base({ tool: 'fs__write', riskTags: ['write'], approved: true, now: 9 })]);
    expect(viewOf(records[0], 's', 20)).toEqual({ id: 's', calls: 2, tools: ['fs__read', 'fs__write'], riskTags: ['read', 'write'], labels: [], startedAt: 5, approvals: 1, client: { name: 'agent', version: '2' } });
    // A session's first call: it starts now, and knows its client.
    expect(viewOf(undefined, 's', 20, { name: 'agent', version: '2' })).toEqual(session({ id: 's', startedAt: 20, client: { name: 'agent', version: '2' } }));
    expect(viewOf({ ...emptyRecord('s', 1), labels: [{ name: 'x', jobId: 'J', by: 'r', at: 1 }, { name: 'x', jobId: 'K', by: 'r', at: 2 }] }, 's', 20).labels).toEqual(['x']);
  });
});

describe('session keys, per era', () => {
  const now = Date.UTC(2026, 6, 28, 10, 30);
  it('keys a 2025 client by its MCP session, a 2026-07-28 client by its _meta session within its principal, else by principal and window', () => {
    const caller = { tenant: 't', principal: 'ann' };
    expect(sessionKeyOf({ ...caller, sessionId: 'abc' }, { 'gatehouse/session': 'x' }, now, 3_600_000)).toBe('s:t:abc');
    expect(sessionKeyOf(caller, { 'gatehouse/session': 'conv-1' }, now, 3_600_000)).toBe('m:t:ann:conv-1');
    expect(sessionKeyOf({ ...caller, principal: 'bob' }, { 'gatehouse/session': 'conv-1' }, now, 3_600_000)).toBe('m:t:bob:conv-1');
    expect(sessionKeyOf(caller, undefined, now, 3_600_000)).toBe(sessionKeyOf(caller, { 'gatehouse/session': 42 }, now + 1_000, 3_600_000));
    expect(sessionKeyOf(caller, undefined, now, 3_600_000)).not.toBe(sessionKeyOf(caller, undefined, now + 3_600_000, 3_600_000));
    expect(principalDayKey(caller, now)).toBe('d:t:ann:2026-07-28');
  });
});

describe('config sessions', () => {
  const load = (text: string) => resolveConfig(parseYamlText('/etc/gh/gatehouse.yaml', text, 'GH_ERR_CONFIG_INVALID'), {}, () => true);
  it('defaults to a 2025 HTTP session’s idle time and a one-hour window, and takes durations', () => {
    expect(load('upstreams: {}\n').sessions).toEqual({ idle: 30 * 60_000, window: 3_600_000 });
    expect(load('sessions: { idle: 10m, window: 1d }\n').sessions).toEqual({ idle: 600_000, window: 86_400_000 });
    expect(() => load('sessions: { idle: 0 }\n')).toThrow(coded('GH_ERR_CONFIG_INVALID'));
  });
});
