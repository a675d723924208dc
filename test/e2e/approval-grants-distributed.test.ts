import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, DEFAULT_POLICY } from '../helpers/gateway-harness.ts';
import { clusterAvailable, fixtureReplicaConfig, startReplicaInProcess, type Replica } from '../helpers/distributed.ts';
import { resultText } from '../helpers/approvers.ts';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// Two replicas on real NATS and Redis: a grant given on one lets matching calls through on the other, and a
// revoke on either stops them on both, since grants live in the Redis approval store.

let nats: NatsServer | undefined;
let redis: RedisServer | undefined;
const closers: (() => Promise<unknown>)[] = [];

async function replica(): Promise<Replica> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-grants-'));
  const config = fixtureReplicaConfig({ natsUrl: nats!.url, redisUrl: redis!.url, dir, policies: [DEFAULT_POLICY], sideEffects: join(dir, 'writes.log') });
  const started = await startReplicaInProcess(config);
  closers.unshift(() => started.close());
  return started;
}

const write = (args: Record<string, unknown>) => ({ name: 'fx__write', arguments: args });
const approvalId = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/approval'] as { id: string }).id;

describe.skipIf(!clusterAvailable())('approval grants across replicas', () => {
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  });
  afterAll(async () => {
    for (const close of closers) await close().catch(() => undefined);
    await Promise.allSettled([nats?.stop(), redis?.stop()]);
  });

  it('lets matching calls through on every replica, not a call with one argument changed, and a revoke reaches them all', async () => {
    const [a, b] = [await replica(), await replica()];
    const onA = await connectHttp(a.url);
    const onB = await connectHttp(b.url);
    closers.unshift(() => onA.close(), () => onB.close());
    const id = approvalId(await onA.callTool(write({ key: 'shared', value: 'v' })));
    const { grant } = await b.gateway.approvals.approveWithGrant(id, 'bob', { condition: 'args.key == "shared"', scope: 'principal', durationMs: 30 * 60_000 });

    expect(resultText(await onB.callTool(write({ key: 'shared', value: 'from b' })))).toBe('wrote shared');
    expect(resultText(await onA.callTool(write({ key: 'shared', value: 'from a' })))).toBe('wrote shared');
    expect(resultText(await onB.callTool(write({ key: 'other', value: 'from b' })))).toContain('GH_ERR_APPROVAL_PENDING');
    expect((await a.gateway.approvals.grants.list()).map((g) => g.id)).toEqual([grant.id]);

    await a.gateway.approvals.grants.revoke(grant.id, 'bob');
    expect(resultText(await onB.callTool(write({ key: 'shared', value: 'again' })))).toContain('GH_ERR_APPROVAL_PENDING');
  });
});
