import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsBus, type NatsBusOptions } from '../../adapters/nats/bus.ts';
import { durableName } from '../../adapters/nats/jetstream.ts';
import { decodeBusPacket } from '../../src/protocol/cap-wire.ts';
import { CAP_PROTOCOL_VERSION, JobPriority, type BusPacket } from '../../src/protocol/cap.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { waitFor } from '../helpers/gateway-harness.ts';
import { runBusContract } from './bus.contract.ts';

// One real nats-server (with JetStream) for the file; the tests that crash a server start their own. Each bus is
// its own connection, as each process would be.
const available = natsServerAvailable();
let server: NatsServer | undefined;
const KEPT = ['job.>', 'sys.job.submit'];

const connectBus = (options: Partial<NatsBusOptions> = {}, url = server!.url) => NatsBus.connect({ url, name: 'test', log: silentLogger, ...options });
const durableBus = (options: Partial<NatsBusOptions['jetstream']> = {}, url?: string) => connectBus({ jetstream: { subjects: KEPT, ...options } }, url);

const cancel = (jobId: string): BusPacket => ({
  traceId: jobId,
  senderId: 'test',
  createdAt: 1_700_000_000_000,
  protocolVersion: CAP_PROTOCOL_VERSION,
  payload: { kind: 'jobCancel', jobCancel: { jobId, reason: 'r', requestedBy: 'p' } },
});
const job = (jobId: string): BusPacket => ({
  traceId: jobId,
  senderId: 'test',
  createdAt: 1_700_000_000_000,
  protocolVersion: CAP_PROTOCOL_VERSION,
  payload: {
    kind: 'jobRequest',
    jobRequest: {
      jobId,
      topic: 'mcp.fs.read',
      priority: JobPriority.INTERACTIVE,
      contextPtr: `ctx:${jobId}`,
      env: {},
      tenantId: 't',
      principalId: 'p',
      labels: {},
      meta: { tenantId: 't', actorId: 'p', actorType: 'human', capability: 'read', riskTags: [], requires: [], labels: {} },
    },
  },
});
const jobIdOf = (p: BusPacket) => (p.payload?.kind === 'jobRequest' ? p.payload.jobRequest.jobId : '?');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the server holds nothing of the durable consumer `queue` on `subject` unacknowledged or undelivered:
 * from then on it redelivers nothing, so a test can count deliveries without waiting out ack waits.
 */
async function allAcknowledged(queue: string, subject: string): Promise<void> {
  const nc = await connect({ servers: server!.url });
  try {
    const jsm = await jetstreamManager(nc);
    await waitFor(async () => {
      const info = await jsm.consumers.info('GATEHOUSE_JOBS', durableName(queue, subject));
      return info.num_ack_pending === 0 && info.num_pending === 0;
    }, `every message of ${subject} to be acknowledged`);
  } finally {
    await nc.close();
  }
}

function capturingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentLogger, warnings, warn: (msg) => void warnings.push(msg) };
}

describe.skipIf(!available)('NATS bus', () => {
  beforeAll(async () => {
    server = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    await server?.stop();
  });

  runBusContract('nats', () => connectBus());

  describe('NATS specifics', () => {
    it('puts CAP protobuf bytes on the wire', async () => {
      const raw = await connect({ servers: server!.url });
      const seen: BusPacket[] = [];
      raw.subscribe('sys.job.cancel', { callback: (_err, msg) => void seen.push(decodeBusPacket(msg.data)) });
      await raw.flush();
      const bus = await connectBus();
      await bus.publish('sys.job.cancel', cancel('wire1'));
      await waitFor(() => seen.length > 0, 'the raw subscriber');
      expect(seen).toEqual([cancel('wire1')]);
      await bus.close();
      await raw.close();
    });

    it('drops and logs what is not a CAP packet, and keeps delivering past failing handlers', async () => {
      const log = capturingLogger();
      const bus = await connectBus({ log });
      const got: string[] = [];
      bus.subscribe('x.drop', async () => {
        throw new Error('rejects');
      });
      bus.subscribe('x.drop', (p) => got.push(p.traceId));
      const raw = await connect({ servers: server!.url });
      raw.publish('x.drop', new Uint8Array([0xff, 0xff, 0xff]));
      await raw.flush();
      await bus.publish('x.drop', cancel('after'));
      await waitFor(() => got.length > 0, 'the packet after the bad bytes');
      expect(got).toEqual(['after']);
      expect(log.warnings.some((w) => w.includes('not a CAP packet'))).toBe(true);
      await bus.close();
      await raw.close();
    });

    it('refuses an unreachable or malformed URL at startup with an error naming the endpoint, never a password', { timeout: 10_000 }, async () => {
      const err = await NatsBus.connect({ url: 'nats://user:s3cret@127.0.0.1:1', name: 't', log: silentLogger }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'GH_ERR_BUS_UNAVAILABLE', data: { endpoint: 'nats://127.0.0.1:1' } });
      expect((err as Error).message).toContain('127.0.0.1:1');
      expect(JSON.stringify(err) + (err as Error).message).not.toContain('s3cret');
      for (const url of ['', 'not a url', 'http://127.0.0.1:4222', 'nats://u:s3cret@127.0.0.1:4222/path']) {
        const bad = await NatsBus.connect({ url, name: 't', log: silentLogger }).catch((e: unknown) => e);
        expect(bad, url).toMatchObject({ code: 'GH_ERR_BUS_UNAVAILABLE' });
        expect((bad as Error).message).not.toContain('s3cret');
      }
    });

    it('logs in with the credentials of the URL', async () => {
      const own = await startNatsServer({ auth: { user: 'gh', pass: 'p@ss word' } });
      const withPassword = own.url.replace('//', `//gh:${encodeURIComponent('p@ss word')}@`);
      const bus = await connectBus({}, withPassword);
      await bus.publish('x.auth', cancel('a'));
      await bus.close();
      const refused = await connectBus({}, own.url).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'GH_ERR_BUS_UNAVAILABLE', data: { endpoint: own.url } });
      await own.stop();
    });

    it('fails closed while NATS is down, then works again by itself, subscriptions included', { timeout: 20_000 }, async () => {
      const own = await startNatsServer();
      const bus = await connectBus({}, own.url);
      const got: string[] = [];
      bus.subscribe('x.back', (p) => got.push(p.traceId));
      bus.reply('gh.rpc.back', async () => 'here');
      await own.kill();
      let refused: unknown;
      await waitFor(async () => (refused = await bus.publish('x.back', cancel('lost')).then(() => undefined, (e: unknown) => e)) !== undefined, 'publish to be refused', 5_000);
      expect(refused).toMatchObject({ code: 'GH_ERR_BUS_UNAVAILABLE', data: { endpoint: own.url } });
      await expect(bus.request('gh.rpc.back', {}, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'GH_ERR_BUS_UNAVAILABLE' });
      await own.restart();
      await waitFor(async () => (await bus.publish('x.back', cancel('back')).then(() => true, () => false)) && got.includes('back'), 'the bus to work again', 10_000);
      expect(await bus.request('gh.rpc.back', {}, { timeoutMs: 5_000 })).toBe('here');
      expect(got).not.toContain('lost');
      await bus.close();
      await own.stop();
    });

    it('never hangs on a frozen NATS: requests time out, durable publishes fail closed', { timeout: 20_000 }, async () => {
      const own = await startNatsServer({ jetstream: true });
      const bus = await durableBus({}, own.url);
      bus.reply('gh.rpc.frozen', async () => 'ok');
      expect(await bus.request('gh.rpc.frozen', {}, { timeoutMs: 5_000 })).toBe('ok');
      await own.pause();
      await expect(bus.request('gh.rpc.frozen', {}, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_TIMEOUT' });
      // No PubAck within JetStream's timeout (5 s): the job is not known to be kept, so the publish fails.
      await expect(bus.publish('job.frozen', job('f1'))).rejects.toMatchObject({ code: 'GH_ERR_BUS_UNAVAILABLE' });
      await own.resume();
      await bus.publish('job.frozen', job('f2'));
      expect(await bus.request('gh.rpc.frozen', {}, { timeoutMs: 5_000 })).toBe('ok');
      await bus.close();
      await own.stop();
    });

    it('refuses a request whose signal has already aborted', async () => {
      const bus = await connectBus();
      bus.reply('gh.rpc.aborted', async () => 'ran');
      await expect(bus.request('gh.rpc.aborted', {}, { timeoutMs: 5_000, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'GH_ERR_CANCELLED' });
      await bus.close();
    });

    it('close is idempotent, and a closed bus publishes nothing', async () => {
      const bus = await connectBus();
      await Promise.all([bus.close(), bus.close()]);
      await bus.publish('x.closed', cancel('c'));
      await expect(bus.request('gh.rpc.closed', {}, { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE' });
    });
  });

  describe('JetStream', () => {
    it('stores a job request once however often it is published, per subject', async () => {
      const bus = await durableBus();
      await bus.publish('sys.job.submit', job('dup1'));
      await bus.publish('job.dedupe', job('dup1'));
      await bus.publish('job.dedupe', job('dup1'));
      await bus.publish('job.dedupe', job('dup2'));
      const got: string[] = [];
      bus.subscribe('job.dedupe', (p) => void got.push(jobIdOf(p)), { queue: 'dedupe' });
      await waitFor(() => got.includes('dup2'), 'the second job');
      expect(got).toEqual(['dup1', 'dup2']);
      await bus.close();
    });

    it('keeps a job nobody took across a crash of NATS, and delivers it once a worker subscribes', { timeout: 30_000 }, async () => {
      const own = await startNatsServer({ jetstream: true });
      const gateway = await durableBus({}, own.url);
      await gateway.publish('job.kept', job('kept1'));
      await own.restart();
      const worker = await durableBus({}, own.url);
      const got: string[] = [];
      worker.subscribe('job.kept', (p) => void got.push(jobIdOf(p)), { queue: 'workers' });
      await waitFor(() => got.length > 0, 'the kept job', 20_000);
      expect(got).toEqual(['kept1']);
      await gateway.close();
      await worker.close();
      await own.stop();
    });

    it('redelivers what a handler rejected after the delay, and never what it resolved', { timeout: 15_000 }, async () => {
      const bus = await durableBus({ ackWaitMs: 500, redeliverDelayMs: 100 });
      const deliveries: string[] = [];
      bus.subscribe(
        'job.redeliver',
        async (p) => {
          const id = jobIdOf(p);
          deliveries.push(id);
          if (id === 'fails-once' && deliveries.filter((d) => d === id).length === 1) throw new Error('not yet');
        },
        { queue: 'redeliver' },
      );
      await bus.publish('job.redeliver', job('fails-once'));
      await bus.publish('job.redeliver', job('ok'));
      await waitFor(() => deliveries.filter((d) => d === 'fails-once').length === 2, 'the redelivery');
      await allAcknowledged('redeliver', 'job.redeliver');
      expect(deliveries.filter((d) => d === 'fails-once')).toHaveLength(2);
      expect(deliveries.filter((d) => d === 'ok')).toHaveLength(1);
      await bus.close();
    });

    // The handler runs for three ack waits; it says it is still working every half ack wait, which a loaded
    // machine can delay, so the ack wait is long enough for that.
    it('keeps a message with the member whose handler is still running past the ack wait', { timeout: 30_000 }, async () => {
      const a = await durableBus({ ackWaitMs: 2_000 });
      const b = await durableBus({ ackWaitMs: 2_000 });
      const runs: string[] = [];
      let finished = false;
      const slow = async (p: BusPacket) => {
        runs.push(jobIdOf(p));
        await sleep(6_000);
        finished = true;
      };
      a.subscribe('job.long', slow, { queue: 'long' });
      b.subscribe('job.long', slow, { queue: 'long' });
      await a.publish('job.long', job('long1'));
      await waitFor(() => finished, 'the long handler');
      await allAcknowledged('long', 'job.long');
      expect(runs).toEqual(['long1']);
      await a.close();
      await b.close();
    });

    it('shares one durable consumer between buses with the same queue: each job to one of them', { timeout: 15_000 }, async () => {
      const a = await durableBus();
      const b = await durableBus();
      const got: string[] = [];
      a.subscribe('job.shared', (p) => void got.push(`a:${jobIdOf(p)}`), { queue: 'shared' });
      b.subscribe('job.shared', (p) => void got.push(`b:${jobIdOf(p)}`), { queue: 'shared' });
      const plain: string[] = [];
      a.subscribe('job.shared', (p) => void plain.push(jobIdOf(p)));
      const ids = Array.from({ length: 20 }, (_, i) => `s${i}`);
      for (const id of ids) await a.publish('job.shared', job(id));
      await waitFor(() => got.length >= ids.length && plain.length >= ids.length, 'every job');
      await allAcknowledged('shared', 'job.shared');
      expect(got.map((g) => g.slice(2)).sort()).toEqual([...ids].sort());
      expect(plain.sort()).toEqual([...ids].sort());
      await a.close();
      await b.close();
    });
  });
});
