import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, DEFAULT_POLICY, waitFor } from '../helpers/gateway-harness.ts';
import { clusterAvailable, fixtureReplicaConfig, SIGNING_KEY, startReplicaInProcess, type Replica } from '../helpers/distributed.ts';
import { heldWrite, resultText } from '../helpers/approvers.ts';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { webhookReceiver } from '../helpers/webhook-receiver.ts';

// Two replicas on real NATS and Redis, sharing approvals.signingKey: a link one replica minted works on the
// other, and its one use is claimed in Redis, so the first replica refuses it afterwards.

let nats: NatsServer | undefined;
let redis: RedisServer | undefined;
const closers: (() => Promise<unknown>)[] = [];

async function replica(webhookUrl: string): Promise<Replica> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-links-'));
  const config = fixtureReplicaConfig({ natsUrl: nats!.url, redisUrl: redis!.url, dir, policies: [DEFAULT_POLICY], sideEffects: join(dir, 'writes.log') });
  config.approvals = { ...config.approvals, signingKey: SIGNING_KEY, webhook: { url: webhookUrl, headers: {}, format: 'plain', links: true, actAs: 'webhook' } };
  const started = await startReplicaInProcess(config);
  closers.unshift(() => started.close());
  return started;
}

/** A form post of the token to the link's path on `base` (another replica than the one in the link, perhaps). */
async function press(base: string, link: string): Promise<number> {
  const url = new URL(link);
  const response = await fetch(`${base}${url.pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null' },
    body: new URLSearchParams({ token: url.searchParams.get('token')! }).toString(),
  });
  await response.text();
  return response.status;
}

describe.skipIf(!clusterAvailable())('approval links across replicas', () => {
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  });
  afterAll(async () => {
    for (const close of closers) await close().catch(() => undefined);
    await Promise.allSettled([nats?.stop(), redis?.stop()]);
  });

  it('verifies a link on any replica and claims its one use in Redis', async () => {
    const receiver = await webhookReceiver();
    closers.push(() => receiver.close());
    const [a, b] = [await replica(receiver.url), await replica(receiver.url)];
    const client = await connectHttp(a.url);
    closers.unshift(() => client.close());
    const held = heldWrite(client);
    await waitFor(() => receiver.received.some((r) => r.body.event === 'approval.created'), 'the created notice');
    // Each notice is sent once, by whichever replica claimed it.
    const created = receiver.received.filter((r) => r.body.event === 'approval.created');
    expect(created).toHaveLength(1);
    const { approve } = created[0].body.approval.actions;
    const [baseA, baseB] = [a, b].map((r) => r.url.replace(/\/mcp$/, ''));

    // Used on the replica that did not mint it, then refused on both.
    const minter = new URL(approve).origin === new URL(baseA).origin ? baseA : baseB;
    const other = minter === baseA ? baseB : baseA;
    expect(await press(other, approve)).toBe(200);
    expect(resultText(await held)).toBe('wrote k');
    expect(await press(minter, approve)).toBe(410);
    expect(await press(other, approve)).toBe(410);
  });
});
