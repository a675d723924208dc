// The executor alone, on the memory bus and store with a fake clock: what it publishes when the bus or the store
// fails around a call, how it trusts (or not) the pointers in a job's packet, what a second delivery of the same job
// does (its claim), its parallelism limit and its drain.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { Executor, type ExecutorOptions } from '../../src/scheduler/executor.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import { GatewayError } from '../../src/errors.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import { IDEMPOTENT_LABEL } from '../../src/scheduler/idempotency.ts';
import { CAP_PROTOCOL_VERSION, contextPtr, JobPriority, JobStatus, resultPtr, Subjects, type BusPacket, type JobRequest, type JobResult } from '../../src/protocol/cap.ts';
import type { JobContext } from '../../src/protocol/job-context.ts';
import type { Constraints } from '../../src/protocol/constraints.ts';
import type { CallToolResult } from '../../src/protocol/mcp.ts';
import type { Bus, BusHandler, Clock, Store, Upstream, UpstreamRequestOptions } from '../../src/ports.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import { fakeEntry, fakePipeline } from '../helpers/pipeline-fakes.ts';

/** Lets the memory bus deliver, and the executor get as far as it can without the clock or the upstream. */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A clock that moves only when a test sets `t`, or when something sleeps. */
function fakeClock(): Clock & { t: number } {
  const clock: Clock & { t: number } = {
    t: 0,
    now: () => clock.t,
    sleep: async (ms) => {
      clock.t += ms;
      await settled();
    },
  };
  return clock;
}

const ok: CallToolResult = { content: [{ type: 'text', text: 'ran' }] };

type Handle = (args: Record<string, unknown>, options: UpstreamRequestOptions) => CallToolResult | Promise<CallToolResult>;

function upstreamOf(handle: Handle): Upstream {
  return {
    name: 'up',
    state: 'ready',
    serverCapabilities: {},
    start: async () => undefined,
    notify: async () => undefined,
    close: async () => undefined,
    request: async (_method: string, params: Record<string, unknown> | undefined, options: UpstreamRequestOptions) => handle(params!.arguments as Record<string, unknown>, options),
  } as unknown as Upstream;
}

/** Calls that run until a test finishes them or they are cancelled; `started` lists their job ids in order. */
function heldCalls() {
  const started: string[] = [];
  const finishers = new Map<string, () => void>();
  const handle: Handle = (args, { signal }) =>
    new Promise((resolve, reject) => {
      const id = String(args.id);
      started.push(id);
      finishers.set(id, () => resolve(ok));
      signal?.addEventListener('abort', () => reject(new GatewayError('GH_ERR_CANCELLED', String(signal.reason))), { once: true });
    });
  return { started, handle, finish: (id: string) => finishers.get(id)!() };
}

/** A store that loses every result: Redis went away between running the call and keeping its answer. */
class ResultsLost extends MemoryStore {
  override async set(key: string, value: unknown, options?: { ttlMs?: number }): Promise<void> {
    if (key.startsWith('res:')) throw new GatewayError('GH_ERR_STATE_UNAVAILABLE', 'the state store is not reachable');
    return super.set(key, value, options);
  }
}

/** The memory bus, but publishing on `failing` subjects rejects, as NatsBus does while NATS is down. */
function busFailingOn(memory: Bus, failing: string): Bus {
  return Object.assign(Object.create(memory) as Bus, {
    publish: (subject: string, packet: BusPacket) => (subject === failing ? Promise.reject(new GatewayError('GH_ERR_BUS_UNAVAILABLE', 'NATS is down')) : memory.publish(subject, packet)),
  });
}

/** `bus`, handing `deliveries` what the executor's handlers return: a durable bus redelivers a job whose handler rejected. */
function recordingDeliveries(bus: Bus, memory: MemoryBus, deliveries: unknown[]): Bus {
  return Object.assign(Object.create(bus) as Bus, {
    subscribe: (subject: string, handler: BusHandler, options?: { queue?: string }) =>
      memory.subscribe(
        subject,
        (p, s) => {
          const delivery = handler(p, s);
          deliveries.push(delivery);
          return delivery;
        },
        options,
      ),
  });
}

/** The memory bus standing in for NATS, where a job may arrive twice: executors claim jobs on it. */
function asIfNats(memory: MemoryBus): Bus {
  return Object.assign(Object.create(memory) as Bus, { local: false });
}

const packet = (payload: BusPacket['payload']): BusPacket => ({ traceId: '', senderId: 'gw', createdAt: 0, protocolVersion: CAP_PROTOCOL_VERSION, payload });

interface JobOptions {
  idempotent?: boolean;
  constraints?: Constraints;
  wantsProgress?: boolean;
  /** The packet's context pointer; by default the job's own. */
  contextPtr?: string;
  /** A later round of the job (its upstream asked for input): in the packet's stepIndex and in the context. */
  round?: number;
}

interface World {
  clock: ReturnType<typeof fakeClock>;
  bus: MemoryBus;
  executor: Executor;
  submit(jobId: string, options?: JobOptions): Promise<void>;
  /** Publishes the packet of an earlier `submit` (of that round) again, unchanged: a redelivery, a resend, a duplicate. */
  deliverAgain(jobId: string, round?: number): Promise<void>;
  cancel(jobId: string): Promise<void>;
  resultOf(jobId: string): Promise<JobResult>;
  /** Every result published for the job, once there are `count` of them. */
  resultsOf(jobId: string, count: number): Promise<JobResult[]>;
}

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

interface StartOptions {
  store?: (clock: Clock) => Store;
  bus?: (memory: MemoryBus) => Bus;
  executor?: ExecutorOptions;
  /** More executors serving the pool beside the first (more workers), on the same bus and store. */
  moreWorkers?: number;
}

function start(handle: Handle, options: StartOptions = {}): World {
  const clock = fakeClock();
  const memory = new MemoryBus();
  const bus = options.bus?.(memory) ?? memory;
  const store = options.store?.(clock) ?? new MemoryStore(clock);
  const results: JobResult[] = [];
  const sent = new Map<string, BusPacket>();
  memory.subscribe(Subjects.result, (p) => void (p.payload.kind === 'jobResult' && results.push(p.payload.jobResult)));
  const upstream = upstreamOf(handle);
  const executors = Array.from({ length: 1 + (options.moreWorkers ?? 0) }, (_, i) => {
    const executor = new Executor(bus, store, clock, `w${i + 1}`, (name) => (name === 'up' ? upstream : undefined), undefined, options.executor);
    executor.serve('up');
    stops.push(() => executor.stop());
    return executor;
  });
  const executor = executors[0];
  const waitForResults = (jobId: string, count: number) =>
    vi.waitFor(
      () => {
        const found = results.filter((r) => r.jobId === jobId);
        if (found.length < count) throw new Error(`${found.length} results for ${jobId} yet, waiting for ${count}`);
        return found;
      },
      { timeout: 1_000, interval: 5 },
    );
  return {
    clock,
    bus: memory,
    executor,
    async submit(jobId, { idempotent = false, constraints = {}, wantsProgress = false, contextPtr: pointer = contextPtr(jobId), round } = {}) {
      const context: JobContext = { server: 'up', tool: 't', arguments: { id: round ? `${jobId}:${round}` : jobId }, constraints, wantsProgress, ...(round ? { round } : {}) };
      await store.set(contextPtr(jobId), context);
      const job: JobRequest = {
        jobId,
        topic: 'mcp.up.t',
        priority: JobPriority.INTERACTIVE,
        contextPtr: pointer,
        env: {},
        tenantId: 't',
        principalId: 'ann',
        labels: idempotent ? { [IDEMPOTENT_LABEL]: 'true' } : {},
        meta: { tenantId: 't', actorId: 'ann', actorType: 'user', capability: 't', riskTags: [], requires: [], labels: {} },
        ...(round ? { stepIndex: round } : {}),
      };
      sent.set(`${jobId}:${round ?? 0}`, packet({ kind: 'jobRequest', jobRequest: job }));
      await memory.publish(Subjects.pool('up'), sent.get(`${jobId}:${round ?? 0}`)!);
      await settled();
    },
    async deliverAgain(jobId, round = 0) {
      await memory.publish(Subjects.pool('up'), sent.get(`${jobId}:${round}`)!);
      await settled();
    },
    async cancel(jobId) {
      await memory.publish(Subjects.cancel, packet({ kind: 'jobCancel', jobCancel: { jobId, reason: 'the client gave up', requestedBy: 'gw' } }));
      await settled();
    },
    resultOf: async (jobId) => (await waitForResults(jobId, 1))[0],
    resultsOf: waitForResults,
  };
}

describe('a bus that is down', () => {
  it('loses progress, never the process: a rejected progress publish is not left unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const w = start(
        (_args, { onProgress }) => {
          onProgress?.({ progress: 1, total: 2 });
          return ok;
        },
        { bus: (memory) => busFailingOn(memory, Subjects.progress) },
      );
      await w.submit('J1', { wantsProgress: true });
      expect(await w.resultOf('J1')).toMatchObject({ status: JobStatus.SUCCEEDED });
      await settled();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('logs a result it could not publish, and fails the delivery so a durable bus delivers the job again', async () => {
    const deliveries: unknown[] = [];
    const log: Logger = { ...silentLogger, error: vi.fn() };
    const w = start(() => ok, { bus: (memory) => recordingDeliveries(busFailingOn(memory, Subjects.result), memory, deliveries), executor: { log } });
    await w.submit('J1');
    await vi.waitFor(() => expect(log.error).toHaveBeenCalledWith(expect.any(String), expect.objectContaining({ jobId: 'J1', status: JobStatus.SUCCEEDED })));
    await expect(deliveries[0]).rejects.toMatchObject({ code: 'GH_ERR_BUS_UNAVAILABLE' });
  });
});

describe('a store that fails after the call ran', () => {
  it('ends a tool that is not idempotent in doubt, never with a retryable code', async () => {
    let runs = 0;
    const w = start(() => (runs++, ok), { store: (clock) => new ResultsLost(clock) });
    await w.submit('J1');
    const result = await w.resultOf('J1');
    expect(result).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_EXECUTION_IN_DOUBT' });
    expect(result.resultPtr).toBeUndefined();
    expect(runs).toBe(1);
  });

  it("keeps the store's own retryable code for an idempotent tool", async () => {
    const w = start(() => ok, { store: (clock) => new ResultsLost(clock) });
    await w.submit('J1', { idempotent: true });
    expect(await w.resultOf('J1')).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_STATE_UNAVAILABLE' });
  });

  it('still publishes a refusal it could not store, without its pointer', async () => {
    const w = start(() => ok, { store: (clock) => new ResultsLost(clock) });
    await w.submit('J1', { constraints: { maxArgBytes: 1 } });
    const result = await w.resultOf('J1');
    expect(result).toMatchObject({ status: JobStatus.DENIED, errorCode: 'GH_ERR_ARGS_TOO_LARGE' });
    expect(result.resultPtr).toBeUndefined();
  });
});

describe('pointers in a packet', () => {
  it("refuse a job whose context is another job's, without running it", async () => {
    const calls: unknown[] = [];
    const w = start((args) => (calls.push(args), ok));
    await w.submit('J-victim');
    await w.resultOf('J-victim');
    await w.submit('J-replay', { contextPtr: contextPtr('J-victim') });
    expect(await w.resultOf('J-replay')).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_WIRE_INVALID' });
    expect(calls).toEqual([{ id: 'J-victim' }]);
  });

  it("never lead the gateway to another job's result", async () => {
    let now = 1_800_000_000_000;
    const clock: Clock = { now: () => now++, sleep: async () => undefined };
    const bus = new MemoryBus();
    const store = new MemoryStore(clock);
    const audit = { accepting: true, record: () => undefined, written: async () => undefined } as unknown as AuditTrail;
    const jobs = new JobTracker(audit, clock);
    const scheduler = new Scheduler(bus, jobs, clock, 'gw');
    await store.set(resultPtr('J-victim'), { result: { content: [{ type: 'text', text: 'the victim result' }] }, truncated: false });
    // A forged executor: it answers every job with the pointer of another job's result.
    bus.subscribe(
      Subjects.pool('up'),
      (p) => {
        if (p.payload.kind !== 'jobRequest') return;
        const jobResult: JobResult = { jobId: p.payload.jobRequest.jobId, status: JobStatus.SUCCEEDED, resultPtr: resultPtr('J-victim'), workerId: 'evil', executionMs: 1 };
        return bus.publish(Subjects.result, packet({ kind: 'jobResult', jobResult }));
      },
      { queue: 'executors.up' },
    );
    const entry = fakeEntry('up', 't');
    const pipeline = fakePipeline({ entry, decide: () => ({ effect: 'allow', reason: 'ok', ruleIds: ['r'], policySnapshot: 'sha256:p', constraints: {} }), scheduler, store, jobs, audit, clock });
    scheduler.start();
    stops.push(() => scheduler.stop());
    const outcome = await pipeline.call({
      caller: { principal: 'ann', tenant: 't' },
      name: 'up__t',
      arguments: {},
      meta: undefined,
      reply: { signal: new AbortController().signal, progressToken: undefined, notify: () => undefined, ask: undefined },
    });
    expect(outcome).toMatchObject({ result: { isError: true } });
    expect(JSON.stringify(outcome)).not.toContain('the victim result');
  });
});

describe('the same job delivered twice (a redelivery, a resend after a lost receipt, a duplicate publish)', () => {
  // The README: "Any other call is never run again ... The claim in Redis makes this hold even when a job is
  // delivered twice." Each case fails if the executor's claim check is removed.
  it('runs a tool that is not idempotent once: the second delivery ends GH_ERR_EXECUTION_IN_DOUBT without reaching the upstream', async () => {
    const calls: unknown[] = [];
    const w = start((args) => (calls.push(args), ok), { bus: asIfNats });
    await w.submit('J1');
    expect(await w.resultOf('J1')).toMatchObject({ status: JobStatus.SUCCEEDED });
    await w.deliverAgain('J1');
    const [first, second] = await w.resultsOf('J1', 2);
    expect(first).toMatchObject({ status: JobStatus.SUCCEEDED, resultPtr: resultPtr('J1') });
    expect(second).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_EXECUTION_IN_DOUBT' });
    expect(second.resultPtr).toBeUndefined();
    expect(calls).toEqual([{ id: 'J1' }]);
  });

  it('runs it once when the second delivery comes while the first still runs, on another executor sharing the store', async () => {
    const calls = heldCalls();
    const w = start(calls.handle, { moreWorkers: 1, bus: asIfNats });
    await w.submit('J1');
    await w.deliverAgain('J1'); // the memory bus hands queue members turns: this one goes to the second executor
    const [doubt] = await w.resultsOf('J1', 1);
    expect(doubt).toMatchObject({ status: JobStatus.FAILED, errorCode: 'GH_ERR_EXECUTION_IN_DOUBT', workerId: 'w2' });
    calls.finish('J1');
    const [, ran] = await w.resultsOf('J1', 2);
    expect(ran).toMatchObject({ status: JobStatus.SUCCEEDED, workerId: 'w1' });
    expect(calls.started).toEqual(['J1']);
  });

  // A resend after a late receipt goes to a live worker, often the one already running the job (the e2e kill -9
  // test saw an idempotent write twice on the survivor). The executor knows it holds the job: it says so again
  // and lets the run in progress answer, whether the tool is idempotent or not.
  it('absorbs a second delivery of a job it is still running: no second run, no in-doubt answer, its receipt again', async () => {
    for (const idempotent of [true, false]) {
      const calls = heldCalls();
      const w = start(calls.handle, { bus: asIfNats, executor: { acknowledge: true } });
      const receipts: string[] = [];
      w.bus.subscribe(Subjects.progress, (p) => void (p.payload.kind === 'jobProgress' && receipts.push(p.payload.jobProgress.jobId)));
      await w.submit('J1', { idempotent });
      await w.deliverAgain('J1');
      expect(receipts).toEqual(['J1', 'J1']);
      expect(w.executor.activeJobs).toBe(1);
      calls.finish('J1');
      expect(await w.resultOf('J1')).toMatchObject({ status: JobStatus.SUCCEEDED });
      await settled();
      expect((await w.resultsOf('J1', 1)).length).toBe(1);
      expect(calls.started).toEqual(['J1']);
      expect(w.executor.activeJobs).toBe(0);
    }
  });

  it('settles the second delivery with the run in progress: both fail when its result cannot be published, so a durable bus delivers it again', async () => {
    const calls = heldCalls();
    const deliveries: unknown[] = [];
    const w = start(calls.handle, { bus: (memory) => recordingDeliveries(busFailingOn(asIfNats(memory), Subjects.result), memory, deliveries), executor: { log: silentLogger } });
    await w.submit('J1', { idempotent: true });
    await w.deliverAgain('J1');
    calls.finish('J1');
    expect(deliveries).toHaveLength(2);
    for (const delivery of deliveries) await expect(delivery).rejects.toMatchObject({ code: 'GH_ERR_BUS_UNAVAILABLE' });
    expect(calls.started).toEqual(['J1']);
  });

  it('runs an idempotent tool again: its claim being taken is no reason to refuse it', async () => {
    const calls: unknown[] = [];
    const w = start((args) => (calls.push(args), ok), { bus: asIfNats });
    await w.submit('J1', { idempotent: true });
    await w.resultOf('J1');
    await w.deliverAgain('J1');
    expect((await w.resultsOf('J1', 2)).map((r) => r.status)).toEqual([JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]);
    expect(calls).toEqual([{ id: 'J1' }, { id: 'J1' }]);
  });
});

describe('a late delivery of an earlier round of a job (its upstream asked for input, and the next round is out)', () => {
  it("runs nothing and answers nothing, even for an idempotent tool: the context is the next round's, and the next round runs once", async () => {
    const calls = heldCalls();
    const w = start(calls.handle, { bus: asIfNats });
    await w.submit('J1', { idempotent: true });
    calls.finish('J1');
    await w.resultOf('J1');
    await w.submit('J1', { idempotent: true, round: 1 });
    await w.deliverAgain('J1', 0);
    calls.finish('J1:1');
    await w.resultsOf('J1', 2);
    await w.deliverAgain('J1', 0);
    await settled();
    expect(calls.started).toEqual(['J1', 'J1:1']);
    expect((await w.resultsOf('J1', 2)).map((r) => r.status)).toEqual([JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]);
  });
});

describe('maxParallel', () => {
  it('runs that many jobs at once and queues the rest in arrival order; queued jobs count as active', async () => {
    const calls = heldCalls();
    const w = start(calls.handle, { executor: { maxParallel: 2 } });
    for (const id of ['J1', 'J2', 'J3', 'J4']) await w.submit(id);
    expect(calls.started).toEqual(['J1', 'J2']);
    expect(w.executor.activeJobs).toBe(4);

    calls.finish('J2');
    await settled();
    expect(calls.started).toEqual(['J1', 'J2', 'J3']);
    calls.finish('J1');
    await settled();
    expect(calls.started).toEqual(['J1', 'J2', 'J3', 'J4']);
    expect(w.executor.activeJobs).toBe(2);
    expect(await w.resultOf('J1')).toMatchObject({ status: JobStatus.SUCCEEDED });
  });

  it('ends a queued job that is cancelled without running it, and gives its turn to the next', async () => {
    const calls = heldCalls();
    const w = start(calls.handle, { executor: { maxParallel: 1 } });
    await w.submit('J1');
    await w.submit('J2');
    await w.submit('J3');
    await w.cancel('J2');
    expect(await w.resultOf('J2')).toMatchObject({ status: JobStatus.CANCELLED, errorCode: 'GH_ERR_CANCELLED' });
    expect(w.executor.activeJobs).toBe(2);

    calls.finish('J1');
    await settled();
    expect(calls.started).toEqual(['J1', 'J3']);
  });
});

describe('a draining executor', () => {
  it('takes no new job but still hears cancels for the jobs it finishes', async () => {
    const calls = heldCalls();
    const w = start(calls.handle);
    await w.submit('J1');
    const drained = w.executor.drain(10_000);
    await w.submit('J2');
    await w.cancel('J1');
    await drained;
    expect(await w.resultOf('J1')).toMatchObject({ status: JobStatus.CANCELLED });
    expect(w.clock.t).toBeLessThan(10_000); // ended by the cancel, not by the grace running out
    expect(calls.started).toEqual(['J1']);
  });
});

describe('receipts', () => {
  it('with acknowledge, says a job arrived (a bare DISPATCHED progress) before it runs; without, says nothing', async () => {
    for (const acknowledge of [true, false]) {
      const calls = heldCalls();
      const w = start(calls.handle, { executor: { acknowledge } });
      const receipts: { jobId: string; status?: JobStatus }[] = [];
      w.bus.subscribe(Subjects.progress, (p) => void (p.payload.kind === 'jobProgress' && receipts.push(p.payload.jobProgress)));
      await w.submit('R1');
      await settled();
      expect(receipts).toEqual(acknowledge ? [{ jobId: 'R1', status: JobStatus.DISPATCHED }] : []);
      calls.finish('R1');
      expect(await w.resultOf('R1')).toMatchObject({ status: JobStatus.SUCCEEDED });
    }
  });
});
