// The README (Running a team deployment): a job's result and receipt go to the replica that waits for them, not to
// every replica, so the NATS messages a call costs do not grow with the number of replicas. Real nats-server, three
// replicas' schedulers and a worker's executor, each on its own connection: the server's own per-connection counts
// (/connz) show what each replica was delivered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../adapters/nats/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import { silentLogger } from '../../src/log.ts';
import { CAP_PROTOCOL_VERSION, contextPtr, JobStatus, Subjects, type BusPacket } from '../../src/protocol/cap.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import type { Upstream } from '../../src/ports.ts';
import type { JobContext } from '../../src/protocol/job-context.ts';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { writeJobRequest } from '../helpers/job-request.ts';
import { waitFor } from '../helpers/gateway-harness.ts';

const available = natsServerAvailable();
const POOL = 'fx';
const JOBS = 10;
const context: JobContext = { server: 'fx', tool: 'write', arguments: { path: '/tmp/x' }, constraints: {}, wantsProgress: false };
const upstream = { name: 'fx', state: 'ready', request: async () => ({ content: [{ type: 'text', text: 'ran' }] }) } as unknown as Upstream;
const noAudit = { record: () => undefined, written: async () => undefined } as unknown as AuditTrail;

/** Messages the server delivered to each named connection so far. */
async function deliveredTo(server: NatsServer): Promise<Record<string, number>> {
  const connz = (await (await fetch(`${server.monitorUrl}/connz`)).json()) as { connections: { name?: string; out_msgs: number }[] };
  return Object.fromEntries(connz.connections.filter((c) => c.name).map((c) => [c.name!, c.out_msgs]));
}

describe.skipIf(!available)('results and receipts reach only the replica that waits for them (real NATS)', () => {
  let server: NatsServer;
  const buses: NatsBus[] = [];
  const schedulers = new Map<string, Scheduler>();
  const store = new MemoryStore(systemClock);
  let executor: Executor;
  let worker: NatsBus;

  beforeAll(async () => {
    server = await startNatsServer({ monitor: true });
    for (const name of ['replica-a', 'replica-b', 'replica-c']) {
      const bus = await NatsBus.connect({ url: server.url, name, log: silentLogger });
      buses.push(bus);
      const scheduler = new Scheduler(bus, new JobTracker(noAudit, systemClock), systemClock, name, { log: silentLogger });
      scheduler.start();
      schedulers.set(name, scheduler);
    }
    worker = await NatsBus.connect({ url: server.url, name: 'worker', log: silentLogger });
    buses.push(worker);
    // Acknowledging, as a worker process does: each job costs a receipt as well as a result.
    executor = new Executor(worker, store, systemClock, 'worker-1', () => upstream, undefined, { acknowledge: true, log: silentLogger });
    executor.serve(POOL);
    // Every subscription is in place at the server before the first job goes out.
    await Promise.all(buses.map((b) => b.request('nobody.listens', {}, { timeoutMs: 200 }).catch(() => undefined)));
  });

  afterAll(async () => {
    executor?.stop();
    for (const s of schedulers.values()) s.stop();
    await Promise.allSettled(buses.map((b) => b.close()));
    await server?.stop();
  });

  const run = async (replica: string, jobId: string) => {
    await store.set(contextPtr(jobId), context);
    return schedulers.get(replica)!.run(writeJobRequest(jobId), { pool: POOL, context });
  };

  it('a replica is delivered its own jobs’ receipts and results, and the others nothing of them', async () => {
    const before = await deliveredTo(server);
    for (let i = 0; i < JOBS; i++) expect(await run('replica-a', `A${i}`)).toMatchObject({ status: JobStatus.SUCCEEDED, workerId: 'worker-1' });
    // A receipt and a result per job, to replica A alone (the server counts them once delivered).
    await waitFor(async () => (await deliveredTo(server))['replica-a'] - before['replica-a'] >= 2 * JOBS, 'replica A’s receipts and results');
    const after = await deliveredTo(server);
    const delta = (name: string) => after[name] - before[name];
    expect(delta('replica-a')).toBe(2 * JOBS);
    expect(delta('replica-b')).toBe(0);
    expect(delta('replica-c')).toBe(0);
    expect(delta('worker')).toBe(JOBS);

    expect(await run('replica-b', 'B0')).toMatchObject({ status: JobStatus.SUCCEEDED });
    await waitFor(async () => (await deliveredTo(server))['replica-b'] - after['replica-b'] >= 2, 'replica B’s receipt and result');
    const last = await deliveredTo(server);
    expect([last['replica-a'] - after['replica-a'], last['replica-b'] - after['replica-b'], last['replica-c'] - after['replica-c']]).toEqual([0, 2, 0]);
  });

  it('a job that names some other subject to answer on is answered on the shared subject, never there', async () => {
    const seen: string[] = [];
    const watcher = await NatsBus.connect({ url: server.url, name: 'watcher', log: silentLogger });
    buses.push(watcher);
    watcher.subscribe('>', (packet, subject) => void (packet.payload.kind !== 'heartbeat' && seen.push(`${subject} ${packet.payload.kind}`)));
    await watcher.request('nobody.listens', {}, { timeoutMs: 200 }).catch(() => undefined);
    await store.set(contextPtr('X1'), context);
    const job: BusPacket = { traceId: 'X1', senderId: 'elsewhere', createdAt: Date.now(), protocolVersion: CAP_PROTOCOL_VERSION, payload: { kind: 'jobRequest', jobRequest: writeJobRequest('X1', { replyTo: Subjects.worker('other') }) } };
    await watcher.publish(Subjects.pool(POOL), job);
    await waitFor(() => seen.includes(`${Subjects.result} jobResult`), 'the result on the shared subject');
    expect(seen).not.toContain(`${Subjects.worker('other')} jobResult`);
    expect(seen).not.toContain(`${Subjects.worker('other')} jobProgress`);
  });
});
