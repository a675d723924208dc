import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { defaultConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { NatsBus } from '../../adapters/nats/bus.ts';
import { DEFAULT_POLICY, FIXTURE_UPSTREAM, ROOT, waitFor } from '../helpers/gateway-harness.ts';
import { SIGNING_KEY, startReplicaInProcess, type Replica } from '../helpers/distributed.ts';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { redisServerAvailable, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';

// A 2025-11-25 client's session on two gateway replicas (in this process) that share real NATS and Redis
// servers: whichever replica a request reaches serves it, as behind a load balancer without sticky sessions.
const available = natsServerAvailable() && redisServerAvailable();

const VERSION = '2025-11-25';

async function startReplica(nats: NatsServer, redis: RedisServer): Promise<Replica> {
  return startReplicaInProcess(
    defaultConfig({
      mode: 'distributed',
      nats: { url: nats.url, jetstream: false },
      redis: { url: redis.url },
      dataDir: mkdtempSync(join(tmpdir(), 'gh-sessions-')),
      policies: [DEFAULT_POLICY],
      approvals: { ...defaultConfig().approvals, signingKey: SIGNING_KEY },
      // Run by each replica itself (no pool), so no worker is needed.
      upstreams: { fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT, timeout: 60_000 } },
    }),
  );
}

type Message = { jsonrpc: '2.0'; id?: string | number | null; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { code: number; message: string; data?: { code?: string } } };

/** Reads an SSE body event by event. */
function sseReader(body: ReadableStream<Uint8Array>) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    /** The next message, or undefined once the stream ends. */
    async next(): Promise<Message | undefined> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trim())
            .join('\n');
          if (data) return JSON.parse(data) as Message;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        buffer += value;
      }
    },
    cancel: () => reader.cancel().catch(() => undefined),
  };
}

async function post(url: string, message: Record<string, unknown>, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', ...message }),
  });
}

/** One request's answer, whether it came as a JSON body or at the end of an SSE stream. */
async function call(url: string, message: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; answer: Message | undefined }> {
  const response = await post(url, message, headers);
  if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    const text = await response.text();
    return { status: response.status, answer: text ? (JSON.parse(text) as Message) : undefined };
  }
  const events = sseReader(response.body!);
  for (let m = await events.next(); m; m = await events.next()) if ('result' in m || 'error' in m) return { status: response.status, answer: m };
  return { status: response.status, answer: undefined };
}

let nextId = 1;
const request = (method: string, params: Record<string, unknown> = {}) => ({ id: nextId++, method, params });
const textOf = (answer: Message | undefined) => (answer?.result?.content as { text: string }[] | undefined)?.map((c) => c.text).join('');

describe.skipIf(!available)('2025 sessions across gateway replicas', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  let admin: Redis;
  let a: Replica;
  let b: Replica;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    [a, b] = await Promise.all([startReplica(nats, redis), startReplica(nats, redis)]);
    admin = new Redis(redis.url);
  }, 60_000);

  afterAll(async () => {
    admin?.disconnect();
    await Promise.allSettled([a?.close(), b?.close()]);
    await Promise.allSettled([nats?.stop(), redis?.stop()]);
  });

  /** Initializes a session on `replica`; returns the headers that name it. */
  async function initialize(replica: Replica, capabilities: Record<string, unknown> = {}): Promise<Record<string, string>> {
    const response = await post(replica.url, request('initialize', { protocolVersion: VERSION, capabilities, clientInfo: { name: 'raw-http', version: '1.0.0' } }));
    expect(response.status).toBe(200);
    expect(((await response.json()) as Message).result?.protocolVersion).toBe(VERSION);
    const id = response.headers.get('mcp-session-id');
    expect(id).toBeTruthy();
    return { 'mcp-session-id': id!, 'mcp-protocol-version': VERSION };
  }

  const keysOf = (headers: Record<string, string>) => admin.keys(`*session:${headers['mcp-session-id']}*`);

  it('a session initialized on A serves initialized, tools/list and tools/call on B', async () => {
    const session = await initialize(a);
    expect((await post(b.url, { method: 'notifications/initialized' }, session)).status).toBe(202);
    const listed = await call(b.url, request('tools/list'), session);
    expect(listed.status).toBe(200);
    expect((listed.answer?.result?.tools as { name: string }[]).map((t) => t.name)).toEqual(expect.arrayContaining(['fx__echo', 'fx__ask']));
    const called = await call(b.url, request('tools/call', { name: 'fx__echo', arguments: { text: 'from B' } }), session);
    expect(called.status).toBe(200);
    expect(called.answer?.result?.isError).toBeFalsy();
    expect(textOf(called.answer)).toBe('echo: from B');
    // And back on A, where it began.
    expect(textOf((await call(a.url, request('tools/call', { name: 'fx__echo', arguments: { text: 'from A' } }), session)).answer)).toBe('echo: from A');
  });

  it('DELETE on either replica ends the session on both; a session unknown everywhere is the coded not-found', async () => {
    for (const [deleteOn, other] of [
      [b, a],
      [a, b],
    ] as const) {
      const session = await initialize(a);
      // Both replicas hold a copy before the DELETE.
      for (const replica of [a, b]) expect((await call(replica.url, request('tools/list'), session)).status).toBe(200);
      const stream = await fetch(other.url, { headers: { accept: 'text/event-stream', ...session } });
      expect(stream.status).toBe(200);
      expect((await fetch(deleteOn.url, { method: 'DELETE', headers: session })).status).toBe(200);
      for (const replica of [other, deleteOn]) {
        const after = await call(replica.url, request('tools/list'), session);
        expect(after.status).toBe(404);
        expect(after.answer?.error?.data?.code).toBe('GH_ERR_SESSION_NOT_FOUND');
      }
      // The GET stream the other replica held has ended, and nothing of the session is left in Redis.
      expect(await sseReader(stream.body!).next()).toBeUndefined();
      expect(await keysOf(session)).toEqual([]);
    }
    const unknown = { 'mcp-session-id': randomUUID(), 'mcp-protocol-version': VERSION };
    for (const replica of [a, b]) {
      const answer = await call(replica.url, request('tools/list'), unknown);
      expect(answer.status).toBe(404);
      expect(answer.answer?.error?.data?.code).toBe('GH_ERR_SESSION_NOT_FOUND');
      const deleted = await fetch(replica.url, { method: 'DELETE', headers: unknown });
      expect(deleted.status).toBe(404);
      expect(((await deleted.json()) as Message).error?.data?.code).toBe('GH_ERR_SESSION_NOT_FOUND');
    }
  });

  it('a DELETE that a live replica holding a copy does not confirm answers 503 GH_ERR_STATE_UNAVAILABLE, not success', async () => {
    const session = await initialize(a);
    // A third replica holds a copy and is alive on the bus, but never answers.
    const silent = await NatsBus.connect({ url: nats.url, name: 'silent-replica', log: silentLogger });
    try {
      // It answers a probe only, so the test knows NATS routes the subject to it before B asks.
      silent.reply('gh.replica.gw-silent.sessions', (body) => (body === 'probe' ? Promise.resolve('here') : new Promise(() => undefined)));
      expect(await silent.request('gh.replica.gw-silent.sessions', 'probe', { timeoutMs: 10_000 })).toBe('here');
      await admin.set(`gh:default:kv:session:${session['mcp-session-id']}:copy:31`, JSON.stringify('gw-silent'));
      const deleted = await fetch(b.url, { method: 'DELETE', headers: session });
      expect(deleted.status).toBe(503);
      expect(((await deleted.json()) as Message).error?.data?.code).toBe('GH_ERR_STATE_UNAVAILABLE');
    } finally {
      await silent.close();
    }
  });

  it('once each replica holds the session, requests cost no Redis command for it', async () => {
    const session = await initialize(a);
    const id = session['mcp-session-id'];
    // The first request on B adopts the session (a lookup) and refreshes it there.
    for (const replica of [a, b]) expect((await call(replica.url, request('tools/list'), session)).status).toBe(200);
    const monitor = await admin.duplicate().monitor();
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args.join(' ')));
    try {
      for (let i = 0; i < 10; i++) {
        const replica = i % 2 ? b : a;
        expect((await call(replica.url, request('tools/list'), session)).status).toBe(200);
        expect(textOf((await call(replica.url, request('tools/call', { name: 'fx__echo', arguments: { text: `${i}` } }), session)).answer)).toBe(`echo: ${i}`);
      }
      // Redis feeds MONITOR in the order it runs commands: once this marker shows, every earlier command has.
      const marker = `marker-${randomUUID()}`;
      await admin.echo(marker);
      await waitFor(() => commands.some((c) => c.includes(marker)), 'the monitor to catch up');
      // The audit chain's per-session index (`…:audit:<tenant>:session:<id>`) is the trail's, not the session's: left out.
      const aboutTheSession = (c: string) => c.replace(/\S*:audit:\S*/g, '').includes(`session:${id}`);
      expect(commands.filter(aboutTheSession)).toEqual([]);
      // The filter does see the session's commands when there are some.
      expect((await fetch(b.url, { method: 'DELETE', headers: session })).status).toBe(200);
      await waitFor(() => commands.some(aboutTheSession), 'the DELETE to show in the monitor');
    } finally {
      monitor.disconnect();
    }
  });

  it('the official SDK client works with every request going to the other replica than the last', async () => {
    const hosts = [new URL(a.url).host, new URL(b.url).host];
    const sent: string[] = [];
    let turn = 0;
    const alternating = (url: string | URL, init?: RequestInit) => {
      const target = new URL(url);
      target.host = hosts[turn++ % 2];
      sent.push(`${init?.method ?? 'GET'} ${target.host}`);
      return fetch(target, init);
    };
    const transport = new StreamableHTTPClientTransport(new URL(a.url), { fetch: alternating });
    const client = new Client({ name: 'alternating', version: '1.0.0' }, { capabilities: {} });
    try {
      await client.connect(transport);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['fx__echo']));
      const result = (await client.callTool({ name: 'fx__echo', arguments: { text: 'alternating' } })) as { isError?: boolean; content: { text: string }[] };
      expect(result.isError).toBeFalsy();
      expect(result.content.map((c) => c.text).join('')).toBe('echo: alternating');
      expect((await client.listTools()).tools.length).toBe(tools.length);
      // Both replicas served POSTs of this one session.
      for (const host of hosts) expect(sent).toContain(`POST ${host}`);
      await transport.terminateSession();
    } finally {
      await client.close();
    }
  });

  it('a notification made on B reaches the GET stream held by A (a task’s status), and only one GET stream opens', async () => {
    const session = await initialize(a);
    const stream = await fetch(a.url, { headers: { accept: 'text/event-stream', ...session } });
    expect(stream.status).toBe(200);
    const events = sseReader(stream.body!);
    // B adopts the session, then refuses a second GET stream: A holds one.
    const second = await fetch(b.url, { headers: { accept: 'text/event-stream', ...session } });
    expect(second.status).toBe(409);
    await second.body?.cancel();
    // The task runs on B, which holds no stream: its status notification crosses to A.
    const created = await call(b.url, request('tools/call', { name: 'fx__echo', arguments: { text: 'as a task' }, task: { ttl: 60_000 } }), session);
    const taskId = (created.answer?.result?.task as { taskId: string }).taskId;
    let status: Message | undefined;
    do status = await events.next();
    while (status && !(status.method === 'notifications/tasks/status' && status.params?.status === 'completed'));
    expect(status?.params).toMatchObject({ taskId, status: 'completed' });
    const result = await call(b.url, request('tasks/result', { taskId }), session);
    expect(textOf(result.answer)).toBe('echo: as a task');
    // Once A's stream has gone, B may hold the next one.
    await events.cancel();
    await waitFor(async () => {
      const retry = await fetch(b.url, { headers: { accept: 'text/event-stream', ...session } });
      await retry.body?.cancel();
      return retry.status === 200;
    }, 'B to take the GET stream');
    await fetch(b.url, { method: 'DELETE', headers: session });
  });

  it('a task run on B is polled, cancelled and its result fetched through A (the task id names the replica)', async () => {
    const session = await initialize(a);
    const created = await call(b.url, request('tools/call', { name: 'fx__slow', arguments: { steps: 2, delayMs: 50 }, task: { ttl: 60_000 } }), session);
    const taskId = (created.answer?.result?.task as { taskId: string }).taskId;
    expect(taskId).toMatch(new RegExp(`_${b.gateway.nodeId}$`));
    const got = await call(a.url, request('tasks/get', { taskId }), session);
    expect(got.answer?.result).toMatchObject({ taskId });
    expect(textOf((await call(a.url, request('tasks/result', { taskId }), session)).answer)).toBe('done after 2 steps');
    // A task still running is cancelled through A.
    const long = await call(b.url, request('tools/call', { name: 'fx__slow', arguments: { steps: 100, delayMs: 100 }, task: { ttl: 60_000 } }), session);
    const longId = (long.answer?.result?.task as { taskId: string }).taskId;
    expect((await call(a.url, request('tasks/cancel', { taskId: longId }), session)).answer?.result).toMatchObject({ taskId: longId, status: 'cancelled' });
    expect((await call(b.url, request('tasks/get', { taskId: longId }), session)).answer?.result).toMatchObject({ status: 'cancelled' });
    // Unknown, or another replica's id that no replica answers for: the same coded not-found as before.
    const unknown = await call(a.url, request('tasks/get', { taskId: 'task_01HZZZZZZZZZZZZZZZZZZZZZZZ_gw-gone0000' }), session);
    expect(unknown.answer?.error?.code).toBe(-32602);
    await fetch(a.url, { method: 'DELETE', headers: session });
  });

  it('the answer to an elicitation B sent reaches B when the client posts it to A', async () => {
    const session = await initialize(a, { elicitation: {} });
    const response = await post(b.url, request('tools/call', { name: 'fx__ask', arguments: {} }), session);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const events = sseReader(response.body!);
    const asked = await events.next();
    expect(asked?.method).toBe('elicitation/create');
    const answered = await post(a.url, { id: asked!.id, result: { action: 'accept', content: { answer: '42' } } }, session);
    expect(answered.status).toBe(202);
    let final: Message | undefined;
    do final = await events.next();
    while (final && !('result' in final || 'error' in final));
    expect(textOf(final)).toBe('accept: {"answer":"42"}');
    await fetch(a.url, { method: 'DELETE', headers: session });
  });

  it('a log level set through B is stored before it answers', async () => {
    const session = await initialize(a);
    expect((await call(b.url, request('logging/setLevel', { level: 'error' }), session)).answer?.result).toEqual({});
    const [record] = (await keysOf(session)).filter((key) => key.endsWith(`session:${session['mcp-session-id']}`));
    expect(JSON.parse((await admin.get(record))!)).toMatchObject({ logLevel: 'error', protocolVersion: VERSION, principal: 'tester', tenant: 'default', clientInfo: { name: 'raw-http' } });
    await fetch(b.url, { method: 'DELETE', headers: session });
  });
});
