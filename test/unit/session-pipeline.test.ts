// The session side of the governed path, in process (stub upstream, injected clock, a real kernel): session state
// fails closed, a policy without session rules never touches it, and a call held for a human that its loop breaker
// would refuse is refused at once instead of being held.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { MemorySessionFacts } from '../../adapters/memory/session-facts.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { mergePolicySources, parsePolicy } from '../../src/kernel/bundle.ts';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import { SessionTracker } from '../../src/session/session-tracker.ts';
import { ShadowPolicies } from '../../src/kernel/shadow.ts';
import { silentLogger } from '../../src/log.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import type { SessionFacts } from '../../src/ports.ts';
import type { CallToolResult } from '../../src/protocol/mcp.ts';
import { fakeEntry, fakePipeline, fakeUpstream } from '../helpers/pipeline-fakes.ts';

const kernelOf = (rules: string) => new Kernel(mergePolicySources([parsePolicy(parseYamlText('p.yaml', `version: 2\ndefault: allow\nrules:\n${rules}`, 'GH_ERR_POLICY_INVALID'))]));

/** Session facts whose store is gone: every read and write fails. */
const broken: SessionFacts = {
  read: async () => {
    throw new Error('connection lost');
  },
  update: async () => {
    throw new Error('connection lost');
  },
  close: async () => undefined,
};

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function start(kernel: Kernel, facts: SessionFacts, shadows?: ShadowPolicies) {
  let now = 1_800_000_000_000;
  const clock = { now: () => (now += 1), sleep: async () => undefined };
  const events: AuditEvent[] = [];
  const audit = { accepting: true, record: (e: AuditEvent) => void events.push(e), written: async () => undefined } as unknown as AuditTrail;
  const bus = new MemoryBus();
  const store = new MemoryStore(clock);
  const jobs = new JobTracker(audit, clock);
  const scheduler = new Scheduler(bus, jobs, clock, 'gw');
  let ran = 0;
  const upstream = fakeUpstream('up', () => (ran++, { content: [{ type: 'text', text: 'ran' }] }));
  const executor = new Executor(bus, store, clock, 'w1', (name) => (name === 'up' ? upstream : undefined));
  const sessions = new SessionTracker(facts, { idleMs: 60_000, windowMs: 3_600_000 }, silentLogger);
  const pipeline = fakePipeline({ entry: fakeEntry('up', 't'), kernel, sessions, ...(shadows ? { shadows } : {}), scheduler, store, jobs, audit, clock });
  scheduler.start();
  executor.serve('up');
  stops.push(() => (executor.stop(), scheduler.stop()));
  return {
    events,
    ran: () => ran,
    async call(args: Record<string, unknown>): Promise<CallToolResult> {
      const outcome = await pipeline.call({
        caller: { principal: 'ann', tenant: 't', sessionId: 's1' },
        name: 'up__t',
        arguments: args,
        meta: undefined,
        reply: { signal: new AbortController().signal, progressToken: undefined, notify: () => undefined, ask: undefined },
      });
      if (!('result' in outcome)) throw new Error(JSON.stringify(outcome));
      return outcome.result;
    },
  };
}

const codeOf = (r: CallToolResult) => ((r._meta as Record<string, any> | undefined)?.['gatehouse/error']?.code as string | undefined) ?? 'ok';

describe('session state in the call path', () => {
  it('fails closed: facts that cannot be read refuse a call whose rules read them, before the upstream sees it', async () => {
    const w = start(kernelOf('  - { id: busy, match: {}, when: "session.calls > 100", effect: deny }'), broken);
    expect((await w.call({})).isError).toBe(true);
    expect(w.ran()).toBe(0);
  });

  it('fails closed: counts that cannot be checked refuse a call with a repeat or a budget', async () => {
    const w = start(kernelOf('  - { id: loop, match: {}, effect: allow, repeat: { limit: 3, window: 1m } }'), broken);
    expect((await w.call({})).isError).toBe(true);
    const budgeted = start(kernelOf('  - { id: spend, match: {}, effect: allow, budget: { calls: 3 } }'), broken);
    expect((await budgeted.call({})).isError).toBe(true);
    expect(w.ran() + budgeted.ran()).toBe(0);
  });

  it('fails closed on labels: a rule label that cannot be stored refuses the call; a result label, withholds the result', async () => {
    // From the `nth` update on, the store is gone: a rule's label is set with the count (the first), a result's after it.
    const failingFrom = (nth: number): SessionFacts => {
      const inner = new MemorySessionFacts();
      let updates = 0;
      return { read: (keys) => inner.read(keys), update: (slots, change) => (++updates >= nth ? Promise.reject(new Error('connection lost')) : inner.update(slots, change)), close: () => inner.close() };
    };
    const onRun = start(kernelOf('  - { id: private, match: {}, labels: [private-data] }'), failingFrom(1));
    expect((await onRun.call({})).isError).toBe(true);
    expect(onRun.ran()).toBe(0);
    const onResult = start(kernelOf('  - { id: fetched, match: {}, labelResult: [untrusted-input] }'), failingFrom(2));
    const withheld = await onResult.call({});
    expect(withheld.isError).toBe(true);
    expect(JSON.stringify(withheld.content)).not.toContain('"ran"');
    expect(onResult.ran()).toBe(1);
  });

  it("sets a rule's labels in the same atomic step that counts the call: one update before the call runs, not two", async () => {
    const inner = new MemorySessionFacts();
    let updates = 0;
    const counting: SessionFacts = { read: (keys) => inner.read(keys), update: (slots, change) => (updates++, inner.update(slots, change)), close: () => inner.close() };
    const w = start(kernelOf('  - { id: private, match: {}, labels: [private-data] }'), counting);
    expect(codeOf(await w.call({}))).toBe('ok');
    expect(updates).toBe(1);
    const [record] = await inner.read(['s:t:s1']);
    expect({ calls: record?.calls, labels: record?.labels.map((l) => [l.name, l.by]) }).toEqual({ calls: 1, labels: [['private-data', 'private']] });
  });

  it("reads the session facts only for a call some rule of its tool reads them for: another tool's call does not wait for them", async () => {
    const inner = new MemorySessionFacts();
    let reads = 0;
    const counting: SessionFacts = { read: (keys) => (reads++, inner.read(keys)), update: (slots, change) => inner.update(slots, change), close: () => inner.close() };
    const other = start(kernelOf('  - { id: busy, match: { tools: [up__other] }, when: "session.calls > 100", effect: deny }\n  - { id: loop, match: {}, effect: allow, repeat: { limit: 5, window: 1m } }'), counting);
    expect(codeOf(await other.call({}))).toBe('ok');
    expect(reads).toBe(0);
    const mine = start(kernelOf('  - { id: busy, match: { tools: [up__t] }, when: "session.calls > 100", effect: deny }'), counting);
    expect(codeOf(await mine.call({}))).toBe('ok');
    expect(reads).toBe(1);
  });

  it('never touches session state under a policy with no session rule: the broken store does not matter', async () => {
    const w = start(kernelOf('  - { id: a, match: {}, when: "args.size() < 5", effect: allow }'), broken);
    expect(codeOf(await w.call({}))).toBe('ok');
    expect(w.ran()).toBe(1);
  });

  it('refuses at once, rather than hold for a human, a call its loop breaker would refuse now', async () => {
    // The second identical call needs approval (the session has calls), and its loop breaker is used up: it is
    // refused before the approval gate, which here has no approval service to reach.
    const w = start(
      kernelOf(`  - { id: loop, match: {}, effect: allow, repeat: { limit: 1, window: 1m } }
  - { id: ask-later, match: {}, when: "session.calls >= 1", effect: require_approval }`),
      new MemorySessionFacts(),
    );
    expect(codeOf(await w.call({ a: 1 }))).toBe('ok');
    expect(codeOf(await w.call({ a: 1 }))).toBe('GH_ERR_REPEATED_CALL');
    expect(w.ran()).toBe(1);
  });

  it('sets labels on a session, kept with the call and rule that set them, which the next decision reads', async () => {
    const facts = new MemorySessionFacts();
    const w = start(kernelOf('  - { id: tainted, match: {}, when: \'"private-data" in session.labels\', effect: deny }'), facts);
    expect(codeOf(await w.call({}))).toBe('ok');
    const sessions = new SessionTracker(facts, { idleMs: 60_000, windowMs: 3_600_000 }, silentLogger);
    const tracked = sessions.track({ caller: { principal: 'ann', tenant: 't', sessionId: 's1' }, meta: undefined }, 5);
    const label = { name: 'private-data', jobId: 'J1', by: 'reads-private', at: 5 };
    await sessions.label(tracked, [label, label], 5);
    expect((await facts.read([tracked.sessionKey]))[0]).toMatchObject({ calls: 1, labels: [label] });
    expect(codeOf(await w.call({}))).toBe('GH_ERR_POLICY_DENIED');
  });

  it('loads the session facts for a shadow draft that reads them, though the enforced policy does not', async () => {
    const enforced = kernelOf('  - { id: a, match: {}, effect: allow }');
    const draft = kernelOf('  - { id: second-call, match: {}, when: "session.calls >= 1", effect: deny }');
    const w = start(enforced, new MemorySessionFacts(), new ShadowPolicies(enforced, draft));
    expect([codeOf(await w.call({})), codeOf(await w.call({}))]).toEqual(['ok', 'ok']);
    const shadows = w.events.filter((e) => e.type === 'job.decided').map((e) => (e.data as { shadow?: { effect: string }[] }).shadow?.[0]?.effect);
    expect(shadows).toEqual(['allow', 'deny']);
  });
});
