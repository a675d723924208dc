// What one allowed call costs the store and the bus in embedded mode (issue 11): the arguments and the result by
// pointer, nothing else. Counted on the real MemoryStore and MemoryBus, with the real scheduler,
// executor and call pipeline; a change that adds a store operation or a publish to the hot path fails here.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import type { Bus, Store } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import { fakeEntry, fakePipeline, fakeUpstream } from '../helpers/pipeline-fakes.ts';

/** The store's operations, as `<operation> <key prefix>`. */
function counted(store: Store, ops: string[]): Store {
  const note = (op: string, key: string) => ops.push(`${op} ${key.slice(0, key.indexOf(':') + 1)}`);
  return {
    get: (key) => (note('get', key), store.get(key)),
    set: (key, value, options) => (note('set', key), store.set(key, value, options)),
    setIfAbsent: (key, value, options) => (note('setIfAbsent', key), store.setIfAbsent(key, value, options)),
    claimAndGet: (claim, value, key, options) => (note('claimAndGet', claim), store.claimAndGet(claim, value, key, options)),
    increment: (key, options) => (note('increment', key), store.increment(key, options)),
    delete: (key) => (note('delete', key), store.delete(key)),
    take: (key, also) => (note('take', key), store.take(key, also)),
    close: () => store.close(),
  } as Store;
}

const stops: (() => void)[] = [];
afterEach(() => stops.splice(0).forEach((stop) => stop()));

const clock = { now: () => 1_800_000_000_000, sleep: async () => undefined };

/** The real scheduler, executor (unless `executes` is false) and pipeline on these parts, the tool allowed; resolves with one call's outcome. */
function callThrough(bus: Bus, store: Store, audit: AuditTrail, executes = true) {
  const jobs = new JobTracker(audit, clock);
  const scheduler = new Scheduler(bus, jobs, clock, 'gw');
  const pipeline = fakePipeline({ entry: fakeEntry('up', 't'), decide: () => ({ effect: 'allow', reason: 'ok', ruleIds: ['r'], policySnapshot: 'sha256:p', constraints: {} }), scheduler, store, jobs, audit, clock });
  scheduler.start();
  stops.push(() => scheduler.stop());
  if (executes) {
    const executor = new Executor(bus, store, clock, 'w1', (name) => (name === 'up' ? fakeUpstream('up', () => ({ content: [{ type: 'text', text: 'ran' }] })) : undefined));
    executor.serve('up');
    stops.push(() => executor.stop());
  }
  return pipeline.call({ caller: { principal: 'ann', tenant: 't' }, name: 'up__t', arguments: { a: 1 }, meta: undefined, reply: { signal: new AbortController().signal, progressToken: undefined, notify: () => undefined, ask: undefined } });
}

describe('the work of one allowed call, embedded', () => {
  it('is four store operations (context in, context out, result in, result taken) and two publishes: no claim, since the in-process bus never sends a job twice', async () => {
    const events: AuditEvent[] = [];
    const audit = { accepting: true, record: (e: AuditEvent) => void events.push(e), written: async () => undefined } as unknown as AuditTrail;
    const bus = new MemoryBus();
    const published: string[] = [];
    const publish = bus.publish.bind(bus);
    bus.publish = (subject, packet) => (published.push(packet.payload.kind), publish(subject, packet));
    const memory = new MemoryStore(clock);
    const ops: string[] = [];

    const outcome = await callThrough(bus, counted(memory, ops), audit);
    expect('result' in outcome && outcome.result.content).toEqual([{ type: 'text', text: 'ran' }]);
    expect(ops).toEqual(['set ctx:', 'get ctx:', 'set res:', 'take res:']);
    expect(published).toEqual(['jobRequest', 'jobResult']);
    // Nothing of the call is left behind in the store (a soak at 500 calls/s grew by every call's claim).
    expect(await memory.get('ctx:' + events[0].jobId)).toBeUndefined();
    expect(await memory.get('claim:' + events[0].jobId)).toBeUndefined();
    expect(events.map((e) => e.type)).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.succeeded']);
  });
});

/**
 * The store's operations and the audit barrier's write, grouped into round trips as a remote store (Redis) would see
 * them: each takes one hop (a turn of the event loop), and an operation started while another is in flight shares its
 * round trip. Each round trip is listed as `<operation> <key prefix>` entries.
 */
function roundTrips(store: Store, audit: AuditTrail): { store: Store; audit: AuditTrail; trips: string[][] } {
  const trips: string[][] = [];
  let inFlight = 0;
  const hop = <T>(what: string, work: () => Promise<T>): Promise<T> => {
    if (inFlight++ === 0) trips.push([]);
    trips[trips.length - 1].push(what);
    return new Promise<void>((resolve) => setImmediate(resolve))
      .then(work)
      .finally(() => void inFlight--);
  };
  const prefix = (key: string) => key.slice(0, key.indexOf(':') + 1);
  return {
    trips,
    audit: Object.assign(Object.create(audit) as AuditTrail, { written: (tenant: string) => hop('audit append', () => audit.written(tenant)) }),
    store: {
      get: (key) => hop(`get ${prefix(key)}`, () => store.get(key)),
      set: (key, value, options) => hop(`set ${prefix(key)}`, () => store.set(key, value, options)),
      setIfAbsent: (key, value, options) => hop(`setIfAbsent ${prefix(key)}`, () => store.setIfAbsent(key, value, options)),
      claimAndGet: (claim, value, key, options) => hop(`claimAndGet ${prefix(claim)}${prefix(key)}`, () => store.claimAndGet(claim, value, key, options)),
      increment: (key, options) => hop(`increment ${prefix(key)}`, () => store.increment(key, options)),
      delete: (key) => hop(`delete ${prefix(key)}`, () => store.delete(key)),
      take: (key, also) => hop(`take ${prefix(key)}`, () => store.take(key, also)),
      close: () => store.close(),
    } as Store,
  };
}

describe('the work of one allowed call, distributed', () => {
  it('is four round trips to the store on its path, one command each but the first: the context written while the records are, the claim with the context read, the result written, the result taken', async () => {
    const events: AuditEvent[] = [];
    const trail = { accepting: true, record: (e: AuditEvent) => void events.push(e), written: async () => undefined } as unknown as AuditTrail;
    const { store, audit, trips } = roundTrips(new MemoryStore(clock), trail);
    // A bus that may send a job twice, as NATS may: the executor claims each job.
    const outcome = await callThrough(Object.assign(new MemoryBus(), { local: false }), store, audit);
    expect('result' in outcome && outcome.result.content).toEqual([{ type: 'text', text: 'ran' }]);
    expect(trips).toEqual([['set ctx:', 'audit append'], ['claimAndGet claim:ctx:'], ['set res:'], ['take res:']]);
    expect(events.map((e) => e.type)).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.succeeded']);
  });

  it('never sends a job whose context could not be written: it ends with the store’s code, audited', async () => {
    const events: AuditEvent[] = [];
    const audit = { accepting: true, record: (e: AuditEvent) => void events.push(e), written: async () => undefined } as unknown as AuditTrail;
    const memory = new MemoryStore(clock);
    const store = Object.assign(Object.create(memory) as Store, {
      set: (key: string, value: unknown, options?: { ttlMs?: number }) => (key.startsWith('ctx:') ? Promise.reject(new GatewayError('GH_ERR_STATE_UNAVAILABLE', 'Redis is down')) : memory.set(key, value, options)),
    });
    const bus = new MemoryBus();
    const sent: string[] = [];
    bus.subscribe('job.>', (p) => void sent.push(p.payload.kind));

    const outcome = await callThrough(bus, store, audit, false);
    expect('result' in outcome && outcome.result.isError).toBe(true);
    expect('result' in outcome && (outcome.result._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code).toBe('GH_ERR_STATE_UNAVAILABLE');
    expect(sent).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.failed']);
    expect(events.at(-1)?.data).toMatchObject({ errorCode: 'GH_ERR_STATE_UNAVAILABLE' });
  });
});

describe('who moves a job', () => {
  it('is the scheduler alone: outside src/scheduler/ only the runtime that assembles it sees the job tracker', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join, relative } = await import('node:path');
    const root = join(import.meta.dirname, '../..');
    const sources = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    const reaching = sources(join(root, 'src'))
      .map((file) => relative(root, file))
      .filter((file) => !file.startsWith('src/scheduler/') && !file.startsWith('src/runtime/'))
      .filter((file) => /scheduler\/job-tracker\.ts'/.test(readFileSync(join(root, file), 'utf8')));
    expect(reaching).toEqual([]);
  });
});
