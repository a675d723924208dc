import { describe, expect, it } from 'vitest';
import type { Bus } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import { CAP_PROTOCOL_VERSION, type BusPacket } from '../../src/protocol/cap.ts';
import { waitFor } from '../helpers/gateway-harness.ts';

const packet = (jobId: string): BusPacket => ({
  traceId: jobId,
  senderId: 'test',
  createdAt: 0,
  protocolVersion: CAP_PROTOCOL_VERSION,
  payload: { kind: 'jobCancel', jobCancel: { jobId, reason: 'r', requestedBy: 'p' } },
});
let markers = 0;

/**
 * Resolves once everything published on `bus` before it has reached this bus's subscribers. A bus delivers what
 * one connection publishes in order, so a marker published after it arrives after it: a test then counts what
 * arrived without sleeping, and a delivery that should not happen would have happened by then.
 */
async function delivered(bus: Bus): Promise<void> {
  const subject = `test.marker.m${++markers}`;
  let seen = false;
  const sub = bus.subscribe(subject, () => void (seen = true));
  await bus.publish(subject, packet('marker'));
  await waitFor(() => seen, 'the marker');
  sub.unsubscribe();
}

/** What every Bus adapter must do; run by each adapter's test file. */
export function runBusContract(name: string, makeBus: () => Promise<Bus> | Bus): void {
  describe(`Bus contract: ${name}`, () => {
    it('delivers to every plain subscriber, asynchronously', async () => {
      const bus = await makeBus();
      const a: string[] = [];
      const b: string[] = [];
      bus.subscribe('sys.job.cancel', (p) => a.push(p.traceId));
      bus.subscribe('sys.job.cancel', (p) => b.push(p.traceId));
      await bus.publish('sys.job.cancel', packet('j1'));
      await delivered(bus);
      expect(a).toEqual(['j1']);
      expect(b).toEqual(['j1']);
      await bus.close();
    });

    it('gives each message to exactly one member of a queue group', async () => {
      const bus = await makeBus();
      const got: string[] = [];
      bus.subscribe('job.pool', (p) => got.push(`a:${p.traceId}`), { queue: 'workers' });
      bus.subscribe('job.pool', (p) => got.push(`b:${p.traceId}`), { queue: 'workers' });
      for (let i = 0; i < 10; i++) await bus.publish('job.pool', packet(`j${i}`));
      await delivered(bus);
      expect(got).toHaveLength(10);
      expect(new Set(got.map((g) => g.slice(2))).size).toBe(10);
      await bus.close();
    });

    it('matches * and > wildcards like NATS, and nothing else', async () => {
      const bus = await makeBus();
      const star: string[] = [];
      const tail: string[] = [];
      bus.subscribe('job.*', (_p, s) => star.push(s));
      bus.subscribe('sys.>', (_p, s) => tail.push(s));
      await bus.publish('job.a', packet('1'));
      await bus.publish('job.a.b', packet('2'));
      await bus.publish('sys.job.result', packet('3'));
      await bus.publish('sys', packet('4'));
      await delivered(bus);
      expect(star).toEqual(['job.a']);
      expect(tail).toEqual(['sys.job.result']);
      await bus.close();
    });

    it('stops delivering after unsubscribe', async () => {
      const bus = await makeBus();
      const got: string[] = [];
      const sub = bus.subscribe('x.y', (p) => got.push(p.traceId));
      await bus.publish('x.y', packet('before'));
      await delivered(bus);
      sub.unsubscribe();
      await bus.publish('x.y', packet('after'));
      await delivered(bus);
      expect(got).toEqual(['before']);
      await bus.close();
    });

    it('keeps delivering to others when one subscriber throws', async () => {
      const bus = await makeBus();
      const got: string[] = [];
      bus.subscribe('x.y', () => {
        throw new Error('boom');
      });
      bus.subscribe('x.y', (p) => got.push(p.traceId));
      await bus.publish('x.y', packet('j'));
      await delivered(bus);
      expect(got).toEqual(['j']);
      await bus.close();
    });

    it('request/reply: answers, carries coded errors intact, and fails fast when nobody answers', async () => {
      const bus = await makeBus();
      bus.reply('gh.rpc.a', async (body) => ({ echo: body }), { queue: 'hosts' });
      bus.reply('gh.rpc.fail', async () => {
        throw new GatewayError('GH_ERR_UPSTREAM_ERROR', 'nope', { data: { rpcError: { code: -32601, message: 'x' } } });
      });
      expect(await bus.request('gh.rpc.a', { n: 1 }, { timeoutMs: 5_000 })).toEqual({ echo: { n: 1 } });
      await expect(bus.request('gh.rpc.fail', {}, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_ERROR', message: 'nope', data: { rpcError: { code: -32601 } } });
      await expect(bus.request('gh.rpc.nobody', {}, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE' });
      await bus.close();
    });

    it('request/reply: times out, and a cancelled request rejects at once', async () => {
      const bus = await makeBus();
      bus.reply('gh.rpc.slow', () => new Promise(() => undefined));
      await expect(bus.request('gh.rpc.slow', {}, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_TIMEOUT' });
      const controller = new AbortController();
      const pending = bus.request('gh.rpc.slow', {}, { timeoutMs: 60_000, signal: controller.signal });
      controller.abort();
      await expect(pending).rejects.toMatchObject({ code: 'GH_ERR_CANCELLED' });
      await bus.close();
    });

    it('request/reply: one member of a queue group answers each request', async () => {
      const bus = await makeBus();
      const seen: string[] = [];
      bus.reply('gh.rpc.q', async () => (seen.push('a'), 'a'), { queue: 'hosts' });
      bus.reply('gh.rpc.q', async () => (seen.push('b'), 'b'), { queue: 'hosts' });
      const answers = await Promise.all(Array.from({ length: 6 }, () => bus.request('gh.rpc.q', {}, { timeoutMs: 5_000 })));
      expect(answers).toHaveLength(6);
      expect(seen).toHaveLength(6);
      await bus.close();
    });
  });
}
