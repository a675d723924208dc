// The governed path in-process, with an injected clock and a stub kernel and upstream: what each enforced
// constraint does to a call, what the upstream sees, and what the audit trail records.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import type { Clock } from '../../src/ports.ts';
import type { Decision, DecisionInput } from '../../src/kernel/decision.ts';
import { fakeEntry, fakePipeline, fakeUpstream } from '../helpers/pipeline-fakes.ts';
import type { CallToolResult } from '../../src/protocol/mcp.ts';
import type { Caller } from '../../src/protocol/call.ts';

type Decide = (input: DecisionInput) => Decision;

interface World {
  clock: Clock & { advance(ms: number): void };
  events: AuditEvent[];
  /** The arguments of every call that reached the upstream. */
  seen: Record<string, unknown>[];
  call(args: Record<string, unknown>, caller?: Partial<Caller>): Promise<CallToolResult>;
  stop(): void;
}

const allow = (extra: Partial<Decision> = {}): Decision => ({ effect: 'allow_with_constraints', reason: 'ok', ruleIds: ['r'], policySnapshot: 'sha256:p', constraints: {}, ...extra });

let world: World | undefined;
afterEach(() => world?.stop());

function start(decide: Decide, options: { upstreamUrl?: string; answer?: (args: Record<string, unknown>) => CallToolResult } = {}): World {
  let now = 1_800_000_000_000;
  const clock = { now: () => now, sleep: async () => undefined, advance: (ms: number) => void (now += ms) };
  const events: AuditEvent[] = [];
  const seen: Record<string, unknown>[] = [];
  const audit = { accepting: true, record: (e: AuditEvent) => void events.push(e), written: async () => undefined } as unknown as AuditTrail;
  const bus = new MemoryBus();
  const store = new MemoryStore(clock);
  const jobs = new JobTracker(audit, clock);
  const scheduler = new Scheduler(bus, jobs, clock, 'gw');
  const upstream = fakeUpstream(
    'up',
    (args) => {
      seen.push(args);
      return options.answer?.(args) ?? { content: [{ type: 'text', text: 'ran' }] };
    },
    options.upstreamUrl ? { url: options.upstreamUrl } : {},
  );
  const executor = new Executor(bus, store, clock, 'w1', (name) => (name === 'up' ? upstream : undefined));
  const entry = fakeEntry('up', 't', { annotations: { readOnlyHint: false }, riskTags: ['payments'], labels: { env: 'test' } });
  const pipeline = fakePipeline({ entry, decide, scheduler, store, jobs, audit, clock });
  scheduler.start();
  executor.serve('up');
  return (world = {
    clock,
    events,
    seen,
    async call(args, caller = {}) {
      const outcome = await pipeline.call({
        caller: { principal: 'ann', tenant: 't', ...caller },
        name: 'up__t',
        arguments: args,
        meta: undefined,
        reply: { signal: new AbortController().signal, progressToken: undefined, notify: () => undefined, ask: undefined },
      });
      if (!('result' in outcome)) throw new Error(`a JSON-RPC error: ${JSON.stringify(outcome.error)}`);
      return outcome.result;
    },
    stop() {
      executor.stop();
      scheduler.stop();
    },
  });
}

const errorOf = (r: CallToolResult) => (r._meta as Record<string, any>)['gatehouse/error'];
const textOf = (r: CallToolResult) => String(r.content[0].text);
const recordsOf = (w: World, type: string) => w.events.filter((e) => e.type === type);

describe('the kernel fails closed', () => {
  it('denies, audited with the code and the reason, when decide throws', async () => {
    const w = start(() => {
      throw new Error('index corrupted');
    });
    const result = await w.call({ a: 1 });
    expect(result.isError).toBe(true);
    expect(errorOf(result).code).toBe('GH_ERR_KERNEL_UNAVAILABLE');
    expect(w.seen).toHaveLength(0);
    expect(recordsOf(w, 'job.decided')).toHaveLength(0);
    expect(recordsOf(w, 'job.denied')[0]).toMatchObject({ actor: 'kernel', data: { errorCode: 'GH_ERR_KERNEL_UNAVAILABLE', reason: expect.stringContaining('index corrupted') } });
  });

  it('denies a decision that took longer than its budget, and keeps one that did not', async () => {
    let takes = 51;
    const w = start(() => {
      w.clock.advance(takes);
      return allow();
    });
    const slow = await w.call({});
    expect(errorOf(slow).code).toBe('GH_ERR_KERNEL_UNAVAILABLE');
    expect(recordsOf(w, 'job.denied')[0].data).toMatchObject({ errorCode: 'GH_ERR_KERNEL_UNAVAILABLE', reason: expect.stringMatching(/51 ms and again 51 ms, over its 50 ms budget/) });
    expect(w.seen).toHaveLength(0);
    takes = 50;
    expect((await w.call({})).isError).toBeUndefined();
    expect(w.seen).toHaveLength(1);
  });

  // A first decision pays for cold work (the tool's plan built, its conditions run for the first time) and, on a
  // loaded machine, for being descheduled mid-decision: wall time, not the kernel. Deciding again on the same input
  // is the same function over the same facts, so one that then keeps its budget is the decision.
  it('decides once more when a decision overran its budget, and keeps the second within it', async () => {
    const took = [51, 2];
    const inputs: DecisionInput[] = [];
    const w = start((input) => {
      inputs.push(input);
      w.clock.advance(took.shift() ?? 0);
      return allow();
    });
    const result = await w.call({ a: 1 });
    expect(result.isError).toBeUndefined();
    expect(w.seen).toEqual([{ a: 1 }]);
    expect(inputs).toHaveLength(2);
    expect(inputs[1]).toBe(inputs[0]);
    expect(recordsOf(w, 'job.decided')).toHaveLength(1);
    expect(recordsOf(w, 'job.denied')).toHaveLength(0);
  });

  it('denies when the second decision overruns too, after deciding twice and no more', async () => {
    let decisions = 0;
    const w = start(() => {
      decisions++;
      w.clock.advance(decisions === 1 ? 51 : 60);
      return allow();
    });
    const result = await w.call({});
    expect(errorOf(result).code).toBe('GH_ERR_KERNEL_UNAVAILABLE');
    expect(decisions).toBe(2);
    expect(recordsOf(w, 'job.denied')[0].data).toMatchObject({ reason: expect.stringMatching(/51 ms and again 60 ms, over its 50 ms budget/) });
    expect(w.seen).toHaveLength(0);
  });
});

describe('the decision in the audit trail', () => {
  it('records the decision input for replay, arguments redacted, and condition errors', async () => {
    const w = start(() => allow({ constraints: { redact: { args: ['card', '/sk-[a-z0-9]{8,}/'], result: [] } }, errors: [{ ruleId: 'c', error: 'no such key: x' }] }));
    const args = { card: '4111 1111', note: 'use sk-abcdef123456', nested: { password: 'p', keep: 1 } };
    await w.call(args, { sessionId: 's1' });
    const decided = recordsOf(w, 'job.decided')[0];
    expect(decided.data).toEqual({
      effect: 'allow_with_constraints',
      ruleIds: ['r'],
      policySnapshot: 'sha256:p',
      reason: 'ok',
      input: {
        tenant: 't',
        principal: 'ann',
        server: 'up',
        tool: 'up__t',
        annotations: { readOnlyHint: false },
        riskTags: ['payments'],
        labels: { env: 'test' },
        args: { card: '[REDACTED]', note: 'use [REDACTED]', nested: { password: '[REDACTED]', keep: 1 } },
        now: 1_800_000_000_000,
      },
      errors: [{ ruleId: 'c', error: 'no such key: x' }],
    });
    // The upstream gets the arguments as sent.
    expect(w.seen).toEqual([args]);
  });
});

describe('denials', () => {
  it('show the reason and the remediation, and keep the code in _meta', async () => {
    const w = start(() => ({ effect: 'deny', reason: 'production writes are frozen.', remediation: 'Write to staging instead.', ruleIds: ['freeze'], policySnapshot: 'sha256:p', constraints: {} }));
    const result = await w.call({});
    expect(textOf(result)).toBe('Denied by policy: production writes are frozen. Write to staging instead. [GH_ERR_POLICY_DENIED]');
    expect(errorOf(result)).toEqual({ code: 'GH_ERR_POLICY_DENIED', remediation: 'Write to staging instead.' });
  });

  it('say which deciding condition failed, so the model can fix its arguments', async () => {
    const errors = [
      { ruleId: 'ws-only', error: 'the path cannot be checked: it is relative, so what it names depends on the working directory of the tool; use an absolute path' },
      { ruleId: 'some-allow', error: 'No such key: x' },
    ];
    const w = start(() => ({ effect: 'deny', reason: 'writes stay in the workspace', ruleIds: ['ws-only'], policySnapshot: 'sha256:p', constraints: {}, errors }));
    const text = textOf(await w.call({ path: 'notes.txt' }));
    expect(text).toMatch(/^Denied by policy: writes stay in the workspace\. \(The condition of rule ws-only failed on these arguments: .*use an absolute path; /);
    expect(text).not.toContain('some-allow'); // a rule that did not decide
  });
});

describe('constraints enforced by the executor', () => {
  it('refuses a path outside the rule before the upstream sees it, naming the argument and the rule', async () => {
    const w = start(() => allow({ constraints: { paths: [{ ruleId: 'ws', args: ['path'], allow: ['/tmp/ws/**'] }] } }));
    const refused = await w.call({ path: '/tmp/ws/../../etc/passwd' });
    expect(refused.isError).toBe(true);
    expect(errorOf(refused)).toEqual({ code: 'GH_ERR_PATH_DENIED', ruleId: 'ws', argument: 'path' });
    expect(textOf(refused)).toMatch(/argument path .*rule ws/);
    expect(w.seen).toHaveLength(0);
    expect(recordsOf(w, 'job.denied')[0].data).toMatchObject({ errorCode: 'GH_ERR_PATH_DENIED' });
    expect((await w.call({ path: '/tmp/ws/a' })).isError).toBeUndefined();
    expect(w.seen).toHaveLength(1);
  });

  it("refuses every call through an HTTP upstream whose own host an egress rule does not allow", async () => {
    const w = start(() => allow({ constraints: { egress: [{ ruleId: 'eg', args: ['url'], allowHosts: ['api.example.com'] }] } }), { upstreamUrl: 'http://10.0.0.5:8080/mcp' });
    const refused = await w.call({ url: 'https://api.example.com/' });
    expect(errorOf(refused)).toEqual({ code: 'GH_ERR_EGRESS_DENIED', ruleId: 'eg' });
    expect(w.seen).toHaveLength(0);
  });

  it('redacts the result before it leaves the executor', async () => {
    const w = start(() => allow({ constraints: { redact: { args: [], result: ['secret', '/AKIA[0-9A-Z]{16}/'] } } }), {
      answer: () => ({ content: [{ type: 'text', text: '{"secret":"s3","id":"AKIAABCDEFGHIJKLMNOP"}' }], structuredContent: { secret: 's3', id: 'AKIAABCDEFGHIJKLMNOP' } }),
    });
    const result = await w.call({});
    expect(JSON.stringify(result)).not.toMatch(/s3|AKIA/);
    expect(result.structuredContent).toEqual({ secret: '[REDACTED]', id: '[REDACTED]' });
  });
});

describe('throttles and session quotas', () => {
  it('throttles with a retry-after in _meta and the text, and counts only calls past the approval gate', async () => {
    const w = start(() => allow({ effect: 'throttle', throttles: [{ ruleId: 'rl', limit: 2, windowMs: 60_000, per: 'principal' }] }));
    expect((await w.call({})).isError).toBeUndefined();
    w.clock.advance(20_000);
    expect((await w.call({})).isError).toBeUndefined();
    const throttled = await w.call({});
    expect(errorOf(throttled)).toEqual({ code: 'GH_ERR_THROTTLED', ruleId: 'rl', retryAfterMs: 40_000 });
    expect(textOf(throttled)).toMatch(/retryAfterMs: 40000/);
    expect(recordsOf(w, 'job.denied')[0].data).toMatchObject({ errorCode: 'GH_ERR_THROTTLED', ruleId: 'rl', retryAfterMs: 40_000 });
    expect((await w.call({}, { principal: 'bob' })).isError).toBeUndefined();
    w.clock.advance(40_000);
    expect((await w.call({})).isError).toBeUndefined();
    expect(w.seen).toHaveLength(4);
  });

  it('refuses past maxCallsPerSession, per session, and per principal without one', async () => {
    const w = start(() => allow({ constraints: { maxCallsPerSession: [{ ruleId: 'ws', limit: 1 }] } }));
    expect((await w.call({}, { sessionId: 's1' })).isError).toBeUndefined();
    expect(errorOf(await w.call({}, { sessionId: 's1' }))).toEqual({ code: 'GH_ERR_SESSION_QUOTA', ruleId: 'ws' });
    expect((await w.call({}, { sessionId: 's2' })).isError).toBeUndefined();
    expect((await w.call({})).isError).toBeUndefined();
    expect(errorOf(await w.call({}))).toMatchObject({ code: 'GH_ERR_SESSION_QUOTA' });
    expect(w.seen).toHaveLength(3);
  });
});
