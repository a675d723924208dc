// The reconciler with the embedded adapters and a clock that moves only when a test moves it: the leader lock,
// orphaned jobs ended as in doubt, and DLQ retries run again through the real call pipeline.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { Reconciler, RECONCILER_LOCK, type RetryOutcome } from '../../src/scheduler/reconciler.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import { silentLogger } from '../../src/log.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import { RETRY_TAKEN_TTL_MS, type Clock, type DeadLetter } from '../../src/ports.ts';
import type { Decision } from '../../src/kernel/decision.ts';
import { fakeEntry, fakePipeline, fakeUpstream } from '../helpers/pipeline-fakes.ts';
import { contextPtr } from '../../src/protocol/cap.ts';
import { deadLetter, openJob } from '../contract/job-ledger.contract.ts';

const INTERVAL_MS = 1_000;

function fakeClock(): Clock & { t: number } {
  const clock: Clock & { t: number } = { t: 1_800_000_000_000, now: () => clock.t, sleep: async () => undefined };
  return clock;
}

interface World {
  clock: ReturnType<typeof fakeClock>;
  ledger: FileJobLedger;
  store: MemoryStore;
  events: AuditEvent[];
  reconciler(holder: string, resubmit?: (dead: DeadLetter) => Promise<RetryOutcome | undefined>): Reconciler;
}

let world: World;
const made: Reconciler[] = [];

beforeEach(() => {
  const clock = fakeClock();
  const events: AuditEvent[] = [];
  const audit = { record: (e: AuditEvent) => void events.push(e), written: async () => undefined } as unknown as AuditTrail;
  const ledger = new FileJobLedger(mkdtempSync(join(tmpdir(), 'gh-reconciler-')), clock);
  const store = new MemoryStore(clock);
  world = {
    clock,
    ledger,
    store,
    events,
    reconciler: (holder, resubmit) => {
      const r = new Reconciler({ ledger, store, audit, clock, log: silentLogger, holder, ...(resubmit ? { resubmit } : {}), options: { intervalMs: INTERVAL_MS } });
      made.push(r);
      return r;
    },
  };
});

afterEach(async () => {
  for (const r of made.splice(0)) await r.stop();
  await world.ledger.close();
  await world.store.close();
});

const ofType = (type: string) => world.events.filter((e) => e.type === type);

describe('the leader lock', () => {
  it('lets exactly one of two reconcilers act on an orphaned job', async () => {
    const { clock, ledger, store } = world;
    const context = deadLetter('J1', 0).context!;
    await store.set(contextPtr('J1'), context);
    await ledger.open(openJob('J1', clock.t - 1, { replica: 'gw-dead' }));
    const [a, b] = [world.reconciler('gw-a'), world.reconciler('gw-b')];
    await Promise.all([a.pass(), b.pass(), a.pass(), b.pass()]);
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);

    const timeouts = ofType('job.timeout');
    expect(timeouts).toHaveLength(1);
    expect(timeouts[0]).toMatchObject({ tenant: 't', jobId: 'J1', actor: 'reconciler', data: { errorCode: 'GH_ERR_EXECUTION_IN_DOUBT', replica: 'gw-dead', by: a.isLeader ? 'gw-a' : 'gw-b' } });
    expect(String(timeouts[0].data.reason)).toContain('gw-dead');
    expect(await ledger.getDead('J1')).toMatchObject({ jobId: 'J1', code: 'GH_ERR_EXECUTION_IN_DOUBT', replica: 'gw-dead', context, at: clock.t });
    expect(await ledger.overdue(clock.t + 1e9, 10)).toEqual([]);
    // The audit trail holds no arguments, only the job's facts.
    expect(JSON.stringify(world.events)).not.toContain('/tmp/a');
  });

  it('leaves jobs before their deadline alone, and ends them once it passed', async () => {
    const { clock, ledger } = world;
    await ledger.open(openJob('J2', clock.t + 10_000, { replica: 'gw-dead' }));
    const r = world.reconciler('gw-a');
    await r.pass();
    expect(r.isLeader).toBe(true);
    expect(ofType('job.timeout')).toHaveLength(0);
    clock.t += 10_000;
    await r.pass();
    expect(ofType('job.timeout').map((e) => e.jobId)).toEqual(['J2']);
    // No context left in the store: dead-lettered all the same, as not retryable.
    expect((await ledger.getDead('J2'))?.context).toBeUndefined();
  });

  it("only forgets an overdue job of its own replica, which its scheduler ended already", async () => {
    const { clock, ledger } = world;
    await ledger.open(openJob('J10', clock.t - 1, { replica: 'gw-a' }));
    await world.reconciler('gw-a').pass();
    expect(ofType('job.timeout')).toHaveLength(0);
    expect(await ledger.listDead()).toEqual([]);
    expect(await ledger.overdue(clock.t + 1e9, 10)).toEqual([]);
  });

  it('passes to another replica once the leader stops renewing it, and at once when the leader stops', async () => {
    const { clock, ledger } = world;
    const [a, b] = [world.reconciler('gw-a'), world.reconciler('gw-b')];
    await a.pass();
    await b.pass();
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    // gw-a hangs: no pass renews its lock for three intervals.
    clock.t += 3 * INTERVAL_MS + 1;
    await ledger.open(openJob('J3', clock.t - 1));
    await b.pass();
    expect(b.isLeader).toBe(true);
    expect(ofType('job.timeout').map((e) => e.jobId)).toEqual(['J3']);
    await a.pass();
    expect(a.isLeader).toBe(false);
    await b.stop();
    expect(await ledger.acquireLock(RECONCILER_LOCK, 'gw-c', 1_000)).toBe(true);
  });
});

describe('DLQ retries', () => {
  it('are run by the leader only, once, then leave the DLQ with the outcome audited', async () => {
    const { clock, ledger } = world;
    await ledger.deadLetter(deadLetter('J4', clock.t - 5_000));
    await ledger.requestRetry('J4', 'bob', clock.t - 1_000);
    const ran: DeadLetter[] = [];
    const resubmit = async (dead: DeadLetter) => {
      ran.push(dead);
      return { jobId: 'J4-again' };
    };
    const [a, b] = [world.reconciler('gw-a', resubmit), world.reconciler('gw-b', resubmit)];
    await a.pass();
    await b.pass();
    await a.idle();
    await b.idle();
    expect(ran.map((d) => d.jobId)).toEqual(['J4']);
    expect(ran[0].context?.arguments).toEqual({ path: '/tmp/a', big: 12345678901234, nested: [1.5, 'x'] });
    expect(await ledger.getDead('J4')).toBeUndefined();
    expect(ofType('dlq.retry_started')).toMatchObject([{ jobId: 'J4', tenant: 't', data: { requestedBy: 'bob', by: 'gw-a' } }]);
    expect(ofType('dlq.retried')).toMatchObject([{ jobId: 'J4', data: { retryJobId: 'J4-again', outcome: 'succeeded', requestedBy: 'bob' } }]);
  });

  it('records a retry that failed again with its code, and leaves untouched what nobody asked to retry', async () => {
    const { clock, ledger } = world;
    await ledger.deadLetter(deadLetter('J5', clock.t));
    await ledger.deadLetter(deadLetter('J6', clock.t));
    await ledger.requestRetry('J5', 'bob', clock.t);
    const r = world.reconciler('gw-a', async () => ({ jobId: 'J5-again', errorCode: 'GH_ERR_NO_WORKER' }));
    await r.pass();
    await r.idle();
    expect(ofType('dlq.retried')).toMatchObject([{ jobId: 'J5', data: { outcome: 'GH_ERR_NO_WORKER', retryJobId: 'J5-again' } }]);
    expect((await ledger.listDead()).map((d) => d.jobId)).toEqual(['J6']);
  });

  it('puts a retry that cannot run here back into the DLQ, not lost', async () => {
    const { clock, ledger } = world;
    await ledger.deadLetter(deadLetter('J7', clock.t));
    await ledger.requestRetry('J7', 'bob', clock.t);
    const r = world.reconciler('gw-a', async () => undefined);
    await r.pass();
    await r.idle();
    const back = await ledger.getDead('J7');
    expect(back).toMatchObject({ jobId: 'J7', code: 'GH_ERR_EXECUTION_IN_DOUBT' });
    expect(back?.retry).toBeUndefined();
    expect(ofType('dlq.retry_failed')).toMatchObject([{ jobId: 'J7', data: { requestedBy: 'bob' } }]);
  });

  it('take back a retry whose taker is gone once it stayed taken RETRY_TAKEN_TTL_MS, and never run their own twice', async () => {
    const { clock, ledger } = world;
    await ledger.deadLetter(deadLetter('J11', clock.t));
    await ledger.deadLetter(deadLetter('J12', clock.t));
    await ledger.requestRetry('J11', 'bob', clock.t);
    await ledger.takeRetry('gw-gone', clock.t); // its taker stopped before it could finish the entry
    await ledger.requestRetry('J12', 'bob', clock.t);
    const ran: string[] = [];
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const r = world.reconciler('gw-a', async (dead) => {
      ran.push(dead.jobId);
      if (dead.jobId === 'J12') await finished; // still running here when it could be taken again
      return { jobId: `${dead.jobId}-again` };
    });
    await r.pass();
    expect(ran).toEqual(['J12']);
    expect((await ledger.getDead('J11'))?.retry?.takenBy).toBe('gw-gone');
    clock.t += RETRY_TAKEN_TTL_MS;
    await r.pass();
    finish();
    await r.idle();
    expect(ran).toEqual(['J12', 'J11']);
    expect(await ledger.listDead()).toEqual([]);
    expect(ofType('dlq.retried').map((e) => e.jobId).sort()).toEqual(['J11', 'J12']);
  });

  it('wait while this gateway cannot run them', async () => {
    const { clock, ledger } = world;
    await ledger.deadLetter(deadLetter('J8', clock.t));
    await ledger.requestRetry('J8', 'bob', clock.t);
    await world.reconciler('gw-a').pass();
    expect((await ledger.getDead('J8'))?.retry).toEqual({ requestedAt: clock.t, requestedBy: 'bob' });
  });
});

describe('a DLQ retry through the real call pipeline', () => {
  it('runs the call again as its caller, as a new job under the current policy, and audits the outcome', async () => {
    const { clock, ledger, store, events } = world;
    const audit = { accepting: true, record: (e: AuditEvent) => void events.push(e), written: async () => undefined } as unknown as AuditTrail;
    const bus = new MemoryBus();
    const jobs = new JobTracker(audit, clock);
    const scheduler = new Scheduler(bus, jobs, clock, 'gw-a', { ledger, log: silentLogger });
    const seen: { args: Record<string, unknown>; principal?: string }[] = [];
    const upstream = fakeUpstream('fx', (args) => {
      seen.push({ args });
      return { content: [{ type: 'text', text: 'ran' }] };
    });
    const executor = new Executor(bus, store, clock, 'w1', (name) => (name === 'fx' ? upstream : undefined));
    const entry = fakeEntry('fx', 'write');
    const decided: string[] = [];
    const allow: Decision = { effect: 'allow', reason: 'ok', ruleIds: ['r'], policySnapshot: 'sha256:now', constraints: {} };
    const pipeline = fakePipeline({ entry, decide: (input) => (decided.push(input.principal), allow), scheduler, store, jobs, audit, clock });
    scheduler.start();
    executor.serve('fx');
    try {
      await ledger.deadLetter(deadLetter('J9', clock.t, { principal: 'carol' }));
      await ledger.requestRetry('J9', 'bob', clock.t);
      const r = world.reconciler('gw-a', (dead) => pipeline.resubmit(dead));
      await r.pass();
      await r.idle();
      expect(seen.map((s) => s.args)).toEqual([{ path: '/tmp/a', big: 12345678901234, nested: [1.5, 'x'] }]);
      expect(decided).toEqual(['carol']);
      const retried = ofType('dlq.retried')[0];
      expect(retried).toMatchObject({ jobId: 'J9', data: { outcome: 'succeeded' } });
      const retryJobId = String(retried.data.retryJobId);
      expect(retryJobId).not.toBe('J9');
      expect(events.filter((e) => e.jobId === retryJobId).map((e) => e.type)).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.succeeded']);
      expect(events.find((e) => e.jobId === retryJobId)?.actor).toBe('carol');
      expect(await ledger.listDead()).toEqual([]);
      expect(await ledger.overdue(clock.t + 1e9, 10)).toEqual([]);
    } finally {
      executor.stop();
      scheduler.stop();
      await bus.close();
    }
  });
});
