// Issue 16 (Tests): list-changed notifications travel over `subscriptions/listen`, end to end with real SDK v2 peers.
// Gatehouse talks to a 2026-07-28 upstream statelessly and keeps one `subscriptions/listen` open to it; when that
// upstream's tool list changes, a 2026-07-28 client's `listen()` stream hears notifications/tools/list_changed
// (tagged with its own subscription id), and a 2025 client hears it on its session's GET stream; either then lists
// the changed catalog. A 2025 upstream's list change reaches a 2026-07-28 client's listen stream the same way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, connectWithStream, FIXTURE_UPSTREAM, ROOT, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { startEraServer } from '../fixtures/era-server.ts';

const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';
type Notification = { method: string; params?: { _meta?: Record<string, unknown> } };

let h: Harness;
let remote: Awaited<ReturnType<typeof startEraServer>>;
const clients: Client[] = [];

beforeAll(async () => {
  remote = await startEraServer();
  h = await startHarness({
    upstreams: {
      fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT, timeout: 60_000 },
      v2h: { url: remote.url, headers: {}, timeout: 60_000 },
    },
  });
  await waitFor(() => ['v2h__flip', 'fx__grow'].every((name) => h.gateway.catalog.resolve(name)), 'both upstreams to list their tools');
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await h?.close();
  await remote?.close();
});

/** A 2026-07-28 client, with the JSON-RPC ids of the `subscriptions/listen` requests it sent (its subscription ids). */
async function modernClient(): Promise<{ client: Client; listenIds: unknown[]; heard: Notification[] }> {
  const listenIds: unknown[] = [];
  const watching: typeof fetch = async (input, init) => {
    if (typeof init?.body === 'string') {
      const body = JSON.parse(init.body) as { method?: string; id?: unknown };
      if (body.method === 'subscriptions/listen') listenIds.push(body.id);
    }
    return fetch(input, init);
  };
  const client = await connectHttp(h.url, 'modern', {}, { fetch: watching });
  clients.push(client);
  const heard: Notification[] = [];
  client.setNotificationHandler('notifications/tools/list_changed' as never, ((n: Notification) => void heard.push(n)) as never);
  return { client, listenIds, heard };
}

const listed = async (client: Client) => (await client.listTools()).tools.map((t) => t.name);

describe('a 2026-07-28 upstream whose tool list changes', () => {
  it("reaches a 2026-07-28 client's listen() stream, tagged with its subscription id, and a 2025 client's session stream", async () => {
    const { client: modern, listenIds, heard } = await modernClient();
    const subscription = await modern.listen({ toolsListChanged: true });
    expect(subscription.honoredFilter).toEqual({ toolsListChanged: true });
    expect(listenIds).toHaveLength(1);
    expect(listenIds[0]).toBeDefined();

    const { client: legacy, streamOpen } = await connectWithStream(h.url);
    clients.push(legacy);
    let legacyHeard = 0;
    legacy.setNotificationHandler('notifications/tools/list_changed' as never, () => void legacyHeard++);
    await streamOpen;

    // The change is made at the upstream itself, not through Gatehouse: only Gatehouse's listen to it can carry it.
    const wasListed = (await listed(modern)).includes('v2h__flipped');
    const direct = await connectHttp(remote.url, 'modern');
    clients.push(direct);
    await direct.callTool({ name: 'flip', arguments: {} });
    await waitFor(() => heard.length > 0, "tools/list_changed on the 2026-07-28 client's listen stream");
    await waitFor(() => legacyHeard > 0, "tools/list_changed on the 2025 client's session");
    expect(heard[0].params?._meta?.[SUBSCRIPTION_ID]).toBe(listenIds[0]);

    // Both then see the upstream's new list.
    for (const client of [modern, legacy]) await waitFor(async () => (await listed(client)).includes('v2h__flipped') !== wasListed, 'the changed tool list');

    await subscription.close();
    expect(await subscription.closed).toBe('local');
  });

  it('reaches the client again on the next change (the upstream listen stays open), and a closed subscription hears nothing', async () => {
    const { client, heard } = await modernClient();
    const subscription = await client.listen({ toolsListChanged: true });
    for (let round = 1; round <= 2; round++) {
      await client.callTool({ name: 'v2h__flip', arguments: {} });
      await waitFor(() => heard.length >= round, `tools/list_changed number ${round}`);
    }
    await subscription.close();
    const after = heard.length;
    await client.callTool({ name: 'v2h__flip', arguments: {} });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(heard.length).toBe(after);
  });

  it('a listen that asked only for prompt changes does not hear the tool change', async () => {
    const { client, heard } = await modernClient();
    const subscription = await client.listen({ promptsListChanged: true });
    const { client: control, heard: controlHeard } = await modernClient();
    const controlSubscription = await control.listen({ toolsListChanged: true });
    await client.callTool({ name: 'v2h__flip', arguments: {} });
    await waitFor(() => controlHeard.length > 0, 'tools/list_changed on the control stream');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard).toEqual([]);
    await subscription.close();
    await controlSubscription.close();
  });
});

describe('a 2025 upstream whose tool list changes', () => {
  it("reaches a 2026-07-28 client's listen() stream, tagged with its subscription id, and the new tool is listed", async () => {
    const { client, listenIds, heard } = await modernClient();
    const subscription = await client.listen({ toolsListChanged: true });
    await client.callTool({ name: 'fx__grow', arguments: {} });
    await waitFor(() => heard.length > 0, "tools/list_changed on the 2026-07-28 client's listen stream");
    expect(listenIds[0]).toBeDefined();
    expect(heard[0].params?._meta?.[SUBSCRIPTION_ID]).toBe(listenIds[0]);
    await waitFor(async () => (await listed(client)).includes('fx__grown_1'), 'the new tool');
    await subscription.close();
  });
});
