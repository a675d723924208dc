// The scheduler's run timeout and its bookkeeping in the job ledger, with a clock that moves only when a test
// moves it: a job whose result never comes ends as TIMEOUT, progress keeps it alive, and jobs that die of an
// infrastructure failure are dead-lettered with their context.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import { Scheduler, type RunOptions, type SchedulerOptions, type WorkerRouter } from '../../src/scheduler/scheduler.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import { silentLogger } from '../../src/log.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import type { Bus, Clock, JobLedger, Upstream } from '../../src/ports.ts';
import type { JobContext } from '../../src/protocol/job-context.ts';
import { GatewayError } from '../../src/errors.ts';
import { writeJobRequest } from '../helpers/job-request.ts';
import { CAP_PROTOCOL_VERSION, contextPtr, JobPriority, JobStatus, Subjects, type BusPacket, type JobRequest, type JobResult } from '../../src/protocol/cap.ts';

/** Lets the memory bus deliver what was published (it delivers on a microtask). */
const delivered = () => new Promise<void>((resolve) => setImmediate(resolve));

const RUN_MS = 10_000;
const GRACE_MS = 2_000;
const ORPHAN_MS = 30_000;

const context: JobContext = { server: 'fx', tool: 'write', arguments: { path: '/tmp/x' }, constraints: { timeoutMs: RUN_MS }, wantsProgress: true };

function job(jobId: string): JobRequest {
  return writeJobRequest(jobId, { budget: { deadlineMs: RUN_MS } });
}

interface World {
  clock: Clock & { t: number };
  bus: MemoryBus;
  ledger: JobLedger;
  events: AuditEvent[];
  jobs: JobTracker;
  scheduler: Scheduler;
  /** What was published on job.<pool> and sys.job.cancel. */
  sent: BusPacket[];
  cancels: string[];
  publish(subject: string, payload: BusPacket['payload']): Promise<void>;
}

let world: World;

function start(options: SchedulerOptions = {}): World {
  const clock = { t: 1_800_000_000_000, now: () => clock.t, sleep: async (ms: number) => void (clock.t += ms) };
  const events: AuditEvent[] = [];
  const audit = { record: (e: AuditEvent) => void events.push(e), written: async () => undefined } as unknown as AuditTrail;
  const bus = new MemoryBus();
  const ledger = new FileJobLedger(mkdtempSync(join(tmpdir(), 'gh-sched-')), clock);
  const jobs = new JobTracker(audit, clock);
  const scheduler = new Scheduler(bus, jobs, clock, 'gw-a', { ledger, log: silentLogger, runGraceMs: GRACE_MS, orphanGraceMs: ORPHAN_MS, ...options });
  const sent: BusPacket[] = [];
  const cancels: string[] = [];
  bus.subscribe(Subjects.pool('fx'), (p) => void sent.push(p));
  bus.subscribe(Subjects.cancel, (p) => void (p.payload.kind === 'jobCancel' && cancels.push(p.payload.jobCancel.jobId)));
  scheduler.start();
  const publish = async (subject: string, payload: BusPacket['payload']) => {
    await bus.publish(subject, { traceId: '', senderId: 'w1', createdAt: clock.t, protocolVersion: CAP_PROTOCOL_VERSION, payload });
    await delivered();
  };
  world = { clock, bus, ledger, events, jobs, scheduler, sent, cancels, publish };
  return world;
}

afterEach(async () => {
  world.scheduler.stop();
  await world.bus.close();
  await world.ledger.close();
});

function submit(w: World, jobId: string, extra: Partial<RunOptions> = {}): Promise<JobResult> {
  w.jobs.submit(jobId, 't', 'alice', {});
  return w.scheduler.run(job(jobId), { pool: 'fx', context, ...extra });
}

describe('the run timeout', () => {
  beforeEach(() => void start());

  it('ends a job whose result never comes as TIMEOUT, cancels it, and dead-letters it with its context', async () => {
    const w = world;
    const result = submit(w, 'J1');
    await delivered();
    expect(w.sent).toHaveLength(1); // a worker took it, and swallowed it
    w.clock.t += RUN_MS + GRACE_MS - 1;
    w.scheduler.sweepDeadlines();
    w.clock.t += 1;
    w.scheduler.sweepDeadlines();
    expect(await result).toMatchObject({ jobId: 'J1', status: JobStatus.TIMEOUT, errorCode: 'GH_ERR_UPSTREAM_TIMEOUT' });
    await delivered();
    expect(w.cancels).toEqual(['J1']);
    expect(w.events.map((e) => e.type)).toEqual(['job.submitted', 'job.dispatched', 'job.timeout']);
    await vi.waitFor(async () => expect(await w.ledger.getDead('J1')).toMatchObject({ jobId: 'J1', code: 'GH_ERR_UPSTREAM_TIMEOUT', tenant: 't', principal: 'alice', server: 'fx', tool: 'write', pool: 'fx', replica: 'gw-a', context }));
    expect(await w.ledger.overdue(w.clock.t + 1e9, 10)).toEqual([]);
  });

  it('is restarted by each progress packet', async () => {
    const w = world;
    const progress: number[] = [];
    w.scheduler.run(job('J2'), { pool: 'fx', context, onProgress: (u) => progress.push(u.progress) }).then(() => progress.push(-1));
    await delivered();
    for (let i = 1; i <= 3; i++) {
      w.clock.t += RUN_MS;
      await w.publish(Subjects.progress, { kind: 'jobProgress', jobProgress: { jobId: 'J2', progress: i } });
      w.scheduler.sweepDeadlines();
    }
    expect(progress).toEqual([1, 2, 3]);
    w.clock.t += RUN_MS + GRACE_MS;
    w.scheduler.sweepDeadlines();
    await delivered();
    expect(progress).toEqual([1, 2, 3, -1]);
  });

  it('keeps the ledger deadline ahead of its own, so a live replica ends its jobs before the reconciler would', async () => {
    const w = world;
    void submit(w, 'J3');
    await delivered();
    expect(await w.ledger.overdue(w.clock.t + RUN_MS + GRACE_MS + ORPHAN_MS - 1, 10)).toEqual([]);
    expect((await w.ledger.overdue(w.clock.t + RUN_MS + GRACE_MS + ORPHAN_MS, 10)).map((j) => j.jobId)).toEqual(['J3']);
    // Progress past half the orphan grace moves the ledger's deadline too.
    w.clock.t += ORPHAN_MS;
    await w.publish(Subjects.progress, { kind: 'jobProgress', jobProgress: { jobId: 'J3', progress: 1 } });
    await vi.waitFor(async () => expect(await w.ledger.overdue(w.clock.t + RUN_MS + GRACE_MS + ORPHAN_MS - 1, 10)).toEqual([]));
  });
});

describe('the ledger', () => {
  beforeEach(() => void start());

  it('forgets a job that succeeded, and dead-letters none', async () => {
    const w = world;
    const result = submit(w, 'J4');
    await delivered();
    expect((await w.ledger.overdue(w.clock.t + 1e9, 10)).map((j) => j.jobId)).toEqual(['J4']);
    await w.publish(Subjects.result, { kind: 'jobResult', jobResult: { jobId: 'J4', status: JobStatus.SUCCEEDED, workerId: 'w1', executionMs: 3 } });
    expect((await result).status).toBe(JobStatus.SUCCEEDED);
    await vi.waitFor(async () => expect(await w.ledger.overdue(w.clock.t + 1e9, 10)).toEqual([]));
    expect(await w.ledger.listDead()).toEqual([]);
  });

  it("dead-letters what the scheduler ended, never an outcome a worker reported (the client has that)", async () => {
    const w = world;
    const reported = submit(w, 'J5');
    const toolError = submit(w, 'J6');
    await delivered();
    await w.publish(Subjects.result, { kind: 'jobResult', jobResult: { jobId: 'J5', status: JobStatus.FAILED, workerId: 'w1', executionMs: 3, errorCode: 'GH_ERR_UPSTREAM_UNAVAILABLE', errorMessage: 'fx is down' } });
    await w.publish(Subjects.result, { kind: 'jobResult', jobResult: { jobId: 'J6', status: JobStatus.FAILED, workerId: 'w1', executionMs: 3, errorCode: 'GH_ERR_UPSTREAM_ERROR', errorMessage: 'bad path' } });
    await Promise.all([reported, toolError]);
    const ended = submit(w, 'J5b');
    await delivered();
    w.scheduler.stop();
    await ended;
    await vi.waitFor(async () => expect((await w.ledger.listDead()).map((d) => d.jobId)).toEqual(['J5b']));
  });

  it('dead-letters the jobs cut off when the gateway stops', async () => {
    const w = world;
    const result = submit(w, 'J7');
    await delivered();
    w.scheduler.stop();
    expect(await result).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_EXECUTION_IN_DOUBT' });
    expect(w.events.at(-1)).toMatchObject({ type: 'job.failed', jobId: 'J7' });
    await vi.waitFor(async () => expect((await w.ledger.getDead('J7'))?.code).toBe('GH_ERR_EXECUTION_IN_DOUBT'));
  });
});

describe('when the gateway stops', () => {
  const router: WorkerRouter = { start: () => undefined, stop: () => undefined, pick: () => undefined, noteDispatched: () => undefined, noteEnded: () => undefined, onDead: () => () => undefined };

  it('ends a job its client cancelled as cancelled, though no worker confirmed it, and never dead-letters it', async () => {
    const w = start();
    const client = new AbortController();
    const result = submit(w, 'S1', { signal: client.signal });
    await delivered();
    client.abort(); // the HTTP front closed first; the executor's CANCELLED result has not come back
    w.scheduler.stop();
    expect(await result).toMatchObject({ status: JobStatus.CANCELLED, errorCode: 'GH_ERR_CANCELLED' });
    expect(w.events.at(-1)).toMatchObject({ type: 'job.cancelled', jobId: 'S1' });
    await delivered();
    expect(w.cancels).toContain('S1');
    expect(await w.ledger.overdue(w.clock.t + 1e9, 10)).toEqual([]);
    expect(await w.ledger.listDead()).toEqual([]);
  });

  it('ends a job that may be running in doubt unless its tool is idempotent; one never sent can be tried again; each is cancelled', async () => {
    const w = start({ workers: router, dispatchTimeoutMs: 60_000 });
    w.clock.sleep = () => new Promise(() => undefined); // no worker comes while S4 waits for one
    const running = submit(w, 'S2');
    const idempotent = submit(w, 'S3', { idempotent: true });
    const waiting = submit(w, 'S4', { remote: true });
    await delivered();
    expect(w.sent.map((p) => p.payload.kind === 'jobRequest' && p.payload.jobRequest.jobId)).toEqual(['S2', 'S3']);
    w.scheduler.stop();
    expect(await running).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_EXECUTION_IN_DOUBT' });
    expect(await idempotent).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_UPSTREAM_UNAVAILABLE' });
    expect(await waiting).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_UPSTREAM_UNAVAILABLE' });
    await delivered();
    expect(w.cancels.sort()).toEqual(['S2', 'S3', 'S4']);
    await vi.waitFor(async () => expect((await w.ledger.listDead()).map((d) => [d.jobId, d.code])).toEqual([['S2', 'GH_ERR_EXECUTION_IN_DOUBT'], ['S3', 'GH_ERR_UPSTREAM_UNAVAILABLE'], ['S4', 'GH_ERR_UPSTREAM_UNAVAILABLE']]));
  });

  it('refuses a job that comes after, at once and without sending it anywhere (it would wait forever)', async () => {
    const w = start();
    w.scheduler.stop();
    const late = submit(w, 'S5'); // a call with nobody to cancel it: the DLQ resubmit, a run on approval
    const settled = await Promise.race([late, delivered().then(() => 'still waiting')]);
    expect(settled).toMatchObject({ jobId: 'S5', status: JobStatus.FAILED, errorCode: 'GH_ERR_UPSTREAM_UNAVAILABLE' });
    await delivered();
    expect(w.sent).toEqual([]);
    expect(w.cancels).toEqual([]);
    expect(w.events.map((e) => e.type)).toEqual(['job.submitted', 'job.failed']);
    // Nothing ran: dead-lettered with its context, so that it can be retried.
    await vi.waitFor(async () => expect(await w.ledger.getDead('S5')).toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE', context }));
  });
});

describe('a bus that refuses cancels (NATS down)', () => {
  it('logs them, and never leaves a rejection unhandled, which would end the process', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const w = start();
      const publish = w.bus.publish.bind(w.bus);
      w.bus.publish = async (subject, packet) => {
        if (subject === Subjects.cancel) throw new GatewayError('GH_ERR_BUS_UNAVAILABLE', 'NATS is down');
        return publish(subject, packet);
      };
      const client = new AbortController();
      const cancelled = submit(w, 'B1', { signal: client.signal });
      const overdue = submit(w, 'B2');
      const cutOff = submit(w, 'B3');
      await delivered();
      w.clock.t += RUN_MS + GRACE_MS;
      for (const jobId of ['B1', 'B3']) await w.publish(Subjects.progress, { kind: 'jobProgress', jobProgress: { jobId, progress: 1 } });
      w.scheduler.sweepDeadlines(); // B2's cancel: run timeout
      expect(await overdue).toMatchObject({ status: JobStatus.TIMEOUT });
      client.abort(); // B1's cancel: the client's
      w.scheduler.stop(); // and one for each job cut off
      await Promise.all([cancelled, cutOff]);
      await delivered();
      await delivered();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('with worker pools', () => {
  it('dead-letters a job no live worker took (GH_ERR_NO_WORKER), and a failing ledger never fails the call', async () => {
    const router: WorkerRouter = { start: () => undefined, stop: () => undefined, pick: () => undefined, noteDispatched: () => undefined, noteEnded: () => undefined, onDead: () => () => undefined };
    const w = start({ workers: router, dispatchTimeoutMs: 500 });
    const result = submit(w, 'J8', { remote: true });
    expect(await result).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_NO_WORKER' });
    await vi.waitFor(async () => expect((await w.ledger.getDead('J8'))?.code).toBe('GH_ERR_NO_WORKER'));

    const warnings: string[] = [];
    const broken = { open: () => Promise.reject(new Error('redis down')), finish: () => Promise.reject(new Error('redis down')), deadLetter: () => Promise.reject(new Error('redis down')) } as unknown as JobLedger;
    const scheduler = new Scheduler(w.bus, new JobTracker({ record: () => undefined, written: async () => undefined } as unknown as AuditTrail, w.clock), w.clock, 'gw-b', {
      workers: router,
      dispatchTimeoutMs: 500,
      ledger: broken,
      log: { ...silentLogger, warn: (msg: string) => void warnings.push(msg) },
    });
    scheduler.start();
    expect(await scheduler.run(job('J9'), { pool: 'fx', remote: true, context })).toMatchObject({ errorCode: 'GH_ERR_NO_WORKER' });
    await delivered();
    scheduler.stop();
    expect(warnings).toHaveLength(3);
    expect(warnings.join('\n')).not.toContain('/tmp/x');
  });
});

describe('receipts from workers (a job sent while its worker was not subscribed is lost on core NATS)', () => {
  const router = (): WorkerRouter & { dispatched: string[] } => {
    const dispatched: string[] = [];
    return { dispatched, start: () => undefined, stop: () => undefined, pick: () => 'w1', noteDispatched: (w) => void dispatched.push(w), noteEnded: () => undefined, onDead: () => () => undefined };
  };

  it('sends a job again when its worker never said it arrived, and takes the result of the one that did', async () => {
    const workers = router();
    const w = start({ workers, receiptTimeoutMs: 500 });
    const sentToWorker: string[] = [];
    const progress: unknown[] = [];
    const result = submit(w, 'J10', { remote: true, onProgress: (update) => void progress.push(update) });
    await delivered();
    expect(workers.dispatched).toEqual(['w1']); // lost: nobody subscribed on worker.w1.jobs yet
    w.clock.t += 499;
    w.scheduler.sweepDeadlines();
    expect(workers.dispatched).toHaveLength(1);
    w.bus.subscribe(Subjects.worker('w1'), (p) => void (p.payload.kind === 'jobRequest' && sentToWorker.push(p.payload.jobRequest.jobId)));
    w.clock.t += 1;
    w.scheduler.sweepDeadlines();
    await delivered();
    expect(sentToWorker).toEqual(['J10']);
    expect(w.events.map((e) => e.type)).toContain('job.redispatched');
    // The worker says it arrived (a bare receipt reaches no client as progress), then answers.
    await w.publish(Subjects.progress, { kind: 'jobProgress', jobProgress: { jobId: 'J10', status: JobStatus.DISPATCHED } });
    w.clock.t += 10_000;
    w.scheduler.sweepDeadlines();
    expect(workers.dispatched).toHaveLength(2);
    await w.publish(Subjects.result, { kind: 'jobResult', jobResult: { jobId: 'J10', status: JobStatus.SUCCEEDED, workerId: 'w1', executionMs: 1 } });
    expect(await result).toMatchObject({ status: JobStatus.SUCCEEDED });
    expect(progress).toEqual([]);
  });

  it('sends a job again when its receipt was lost though the worker got it: the worker runs a tool that is not idempotent once, and its run answers', async () => {
    const w = start({ workers: router(), receiptTimeoutMs: 500 });
    const store = new MemoryStore(w.clock);
    await store.set(contextPtr('J12'), context);
    const ran: string[] = [];
    let finish!: () => void;
    const upstream = {
      name: 'fx',
      request: (_method: string, params: Record<string, unknown>) => (ran.push(String((params.arguments as { path: string }).path)), new Promise((resolve) => (finish = () => resolve({ content: [] })))),
    } as unknown as Upstream;
    // The worker's receipt for the first delivery is lost on the way (as over NATS, not the in-process bus): the
    // scheduler cannot tell it arrived.
    let receipts = 0;
    const lossy = Object.assign(Object.create(w.bus) as Bus, {
      local: false,
      publish: (subject: string, p: BusPacket) => (p.payload.kind === 'jobProgress' && receipts++ === 0 ? Promise.resolve() : w.bus.publish(subject, p)),
    });
    const executor = new Executor(lossy, store, w.clock, 'w1', () => upstream, undefined, { acknowledge: true });
    executor.serveDirect();
    try {
      const result = submit(w, 'J12', { remote: true });
      await delivered();
      expect(ran).toEqual(['/tmp/x']);
      w.clock.t += 500;
      w.scheduler.sweepDeadlines(); // no receipt: sent to w1 again, which already runs it
      await delivered();
      expect(w.events.map((e) => e.type)).toContain('job.redispatched');
      // The second delivery finds the job running on that worker: it is acknowledged, the upstream is not called
      // again, and the run in progress answers (before, it ended in doubt at once though the call then succeeded).
      expect(ran).toEqual(['/tmp/x']);
      finish();
      expect(await result).toMatchObject({ status: JobStatus.SUCCEEDED });
      await delivered();
      expect(ran).toEqual(['/tmp/x']);
    } finally {
      executor.stop();
    }
  });

  it('gives up with GH_ERR_NO_WORKER after three sends nobody took', async () => {
    const w = start({ workers: router(), receiptTimeoutMs: 500 });
    const result = submit(w, 'J11', { remote: true });
    for (let i = 0; i < 3; i++) {
      await delivered();
      w.clock.t += 500;
      w.scheduler.sweepDeadlines();
    }
    expect(await result).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_NO_WORKER' });
  });
});
