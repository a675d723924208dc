// The dispatch barrier (issue 10): a job is published only once its records are written, by a group commit of the
// audit trail; an audit that cannot be written refuses calls within its timeout and turns unhealthy at once.
import { describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditWriter } from '../../src/audit/chain-writer.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { JobStatus, Subjects } from '../../src/protocol/cap.ts';
import { writeJobRequest } from '../helpers/job-request.ts';

const event = (type: string, tenant = 't'): AuditEvent => ({ tenant, at: 1, type, actor: 'a', data: {} });

/**
 * A writer whose writes wait until the test lets each one end (`succeed` or `fail`), and which tells who waits
 * for the next write (`started`): the test sees each batch and decides its fate.
 */
function gatedWriter() {
  const batches: string[][] = [];
  const pending: { resolve(): void; reject(err: Error): void }[] = [];
  let onStart: (() => void) | undefined;
  let open = false;
  const writer: AuditWriter = {
    write(batch) {
      batches.push([...batch.values()].flat().map((e) => `${e.tenant}:${e.type}`));
      onStart?.();
      if (open) return Promise.resolve();
      return new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
    },
    close: async () => undefined,
  };
  return {
    writer,
    batches,
    /** Resolves when the next write starts (at once if one started that nobody waited for). */
    started: (count: number) => new Promise<void>((resolve) => (batches.length >= count ? resolve() : (onStart = () => batches.length >= count && resolve()))),
    succeed: () => pending.shift()!.resolve(),
    fail: (failed?: string[]) => pending.shift()!.reject(Object.assign(new Error('read-only file system'), failed ? { failed } : {})),
    /** Every write from now on succeeds, those waiting too (so that a trail can close). */
    release: () => {
      open = true;
      for (const write of pending.splice(0)) write.resolve();
    },
  };
}

describe('the audit trail as a barrier (group commit)', () => {
  it('writes for the first waiter in its turn of the event loop, with everyone who came in that turn, then together for everyone who came while that write ran', async () => {
    const gate = gatedWriter();
    // The flush timer never fires in this test: only waiters make writes.
    const trail = new AuditTrail(gate.writer, { flushIntervalMs: 1_000_000 });
    trail.record(event('a'));
    const first = trail.written('t');
    // A call read in the same turn (the same round of I/O) joins the write: a fast store would end the write
    // before that call is read, and each call would pay for its own.
    trail.record(event('b'));
    const second = trail.written('t');
    await gate.started(1);
    expect(gate.batches).toEqual([['t:a', 't:b']]);
    trail.record(event('c'));
    const third = trail.written('t');
    trail.record(event('d'));
    const fourth = trail.written('t');
    await new Promise((r) => setImmediate(r));
    expect(gate.batches).toHaveLength(1); // one write at a time: c and d wait for the next
    let firstDone = false;
    void first.then(() => (firstDone = true));
    gate.succeed();
    await Promise.all([first, second]);
    expect(firstDone).toBe(true);
    await gate.started(2);
    expect(gate.batches[1]).toEqual(['t:c', 't:d']);
    gate.succeed();
    await Promise.all([third, fourth]);
    expect(gate.batches).toHaveLength(2);
    // Nothing recorded since: a waiter is answered without a write.
    await trail.written('t');
    expect(gate.batches).toHaveLength(2);
    await trail.close();
  });

  it('answers each tenant by its own chain: a tenant that failed waits, the others go on', async () => {
    const gate = gatedWriter();
    const trail = new AuditTrail(gate.writer, { flushIntervalMs: 1_000_000, onError: () => undefined });
    trail.record(event('x', 'a'));
    trail.record(event('y', 'b'));
    const a = trail.written('a');
    const b = trail.written('b');
    await gate.started(1);
    gate.fail(['b']);
    await a;
    expect(trail.healthy).toBe(false);
    await gate.started(2); // the retry, after a short pause
    expect(gate.batches[1]).toEqual(['b:y']);
    gate.succeed();
    await b;
    expect(trail.healthy).toBe(true);
    await trail.close();
  });

  it('refuses a waiter with GH_ERR_AUDIT_UNAVAILABLE when writes keep failing, then refuses new work at once until a write succeeds', async () => {
    const gate = gatedWriter();
    let failedOnce!: () => void;
    const failed = new Promise<void>((resolve) => (failedOnce = resolve));
    const trail = new AuditTrail(gate.writer, { flushIntervalMs: 1_000_000, writeTimeoutMs: 20, onError: () => failedOnce() });
    trail.record(event('a'));
    const waiting = trail.written('t');
    await gate.started(1);
    gate.fail();
    await failed;
    // Unhealthy from the first failed write, while the caller still waits out its timeout.
    expect(trail.healthy).toBe(false);
    expect(trail.accepting).toBe(true);
    await expect(waiting).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_UNAVAILABLE' });
    expect(trail.accepting).toBe(false);
    // The retries go on; the event is still there when the store comes back, and work is accepted again.
    await gate.started(2);
    expect(gate.batches[1]).toEqual(['t:a']);
    gate.succeed();
    await waitUntil(() => trail.healthy);
    expect(trail.accepting).toBe(true);
    trail.record(event('b'));
    const next = trail.written('t');
    await gate.started(3);
    gate.succeed();
    await next;
    expect(gate.batches).toEqual([['t:a'], ['t:a'], ['t:b']]);
    await trail.close();
  });

  it('gives up on a write that hangs past the timeout: the waiter is refused and the trail is unhealthy', async () => {
    const gate = gatedWriter();
    const trail = new AuditTrail(gate.writer, { flushIntervalMs: 1_000_000, writeTimeoutMs: 20 });
    trail.record(event('a'));
    await expect(trail.written('t')).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_UNAVAILABLE' });
    expect(trail.healthy).toBe(false);
    expect(trail.accepting).toBe(false);
    gate.succeed(); // the disk answers after all
    await trail.flush();
    expect(trail.healthy).toBe(true);
    await trail.close();
  });
});

/** A scheduler over a real audit trail with a gated writer, and what it publishes for pool fx. */
function world(writeTimeoutMs = 2_000) {
  const gate = gatedWriter();
  const trail = new AuditTrail(gate.writer, { flushIntervalMs: 1_000_000, writeTimeoutMs, onError: () => undefined });
  const jobs = new JobTracker(trail, systemClock);
  const bus = new MemoryBus();
  const scheduler = new Scheduler(bus, jobs, systemClock, 'gw');
  scheduler.start();
  const published: string[] = [];
  bus.subscribe(Subjects.pool('fx'), (packet) => {
    if (packet.payload.kind === 'jobRequest') published.push(packet.payload.jobRequest.jobId);
  });
  const submit = (jobId: string) => {
    jobs.submit(jobId, 't', 'alice', { argsDigest: 'sha256:x' });
    jobs.note(jobId, 'job.decided', 'kernel', { effect: 'allow' });
  };
  return { gate, trail, jobs, bus, scheduler, published, submit };
}

describe('the scheduler waits for the job\'s records before it publishes the job', () => {
  it('publishes nothing until the write of submitted, decided and dispatched has returned', async () => {
    const w = world();
    w.submit('J1');
    const run = w.scheduler.run(writeJobRequest('J1'), { pool: 'fx' });
    await w.gate.started(1);
    expect(w.gate.batches[0]).toEqual(['t:job.submitted', 't:job.decided', 't:job.dispatched']);
    // The write has started and not returned: the job must not be out yet (the bus delivers on a microtask).
    await new Promise((r) => setImmediate(r));
    expect(w.published).toEqual([]);
    w.gate.succeed();
    await waitUntil(() => w.published.length === 1);
    expect(w.published).toEqual(['J1']);
    w.scheduler.stop();
    await run;
    w.gate.release();
    await w.trail.close();
  });

  it('refuses the job with GH_ERR_AUDIT_UNAVAILABLE, unpublished, when its records cannot be written in time', async () => {
    const w = world(20);
    w.submit('J2');
    const run = w.scheduler.run(writeJobRequest('J2'), { pool: 'fx' });
    await w.gate.started(1);
    w.gate.fail();
    const result = await run;
    expect(result).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_AUDIT_UNAVAILABLE' });
    expect(w.published).toEqual([]);
    w.scheduler.stop();
    w.gate.release();
    await w.trail.close();
  });

  it('does not publish a job whose client cancelled while it waited for its records', async () => {
    const w = world();
    w.submit('J3');
    const abort = new AbortController();
    const run = w.scheduler.run(writeJobRequest('J3'), { pool: 'fx', signal: abort.signal });
    await w.gate.started(1);
    abort.abort();
    w.gate.succeed();
    expect(await run).toMatchObject({ status: JobStatus.CANCELLED });
    expect(w.published).toEqual([]);
    w.scheduler.stop();
    w.gate.release();
    await w.trail.close();
  });
});

async function waitUntil(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((r) => setImmediate(r));
}
