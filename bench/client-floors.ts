/**
 * What one process spends per request as a client of a JSON-RPC server, by transport, in the same run: NDJSON over a
 * child's pipes (a stdio upstream), undici through Gatehouse's own POST handler (adapters/mcp/upstream-post.ts, on a
 * keep-alive Agent: an HTTP upstream), `undici.request()`, node:http with a keep-alive agent, and a minimal HTTP/1.1
 * client on raw sockets (one request per socket at a time, head and body in one write, content-length framing).
 * The servers are bench/plain-echo.ts in their own processes: this process's CPU (user + system) is the client's; the
 * server's, from /proc, is what a bare node:http (or pipe) server spends answering, the floor under a front's cost.
 * It is the floor under issue 17's item 5 (an HTTP upstream's CPU per call within 50 µs of a stdio one's): what the
 * transports alone cost, before anything Gatehouse does. Median of rounds, each transport in turn within a round.
 * Env: BENCH_FLOOR_REQUESTS (20,000 per batch), BENCH_FLOOR_ROUNDS (3), BENCH_CONCURRENCY ("1,16").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { post } from '../adapters/mcp/upstream-post.ts';
import { closedLoop } from './load.ts';
import { cpuMs } from './processes.ts';
import { median } from './stats.ts';

const SERVER = join(import.meta.dirname, 'plain-echo.ts');
const body = (id: number) => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`;
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

type Client = { name: string; call: () => Promise<void>; close(): Promise<void> | void; serverPid?: number };

function server(mode: 'stdio' | 'http'): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', SERVER, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
}

async function stdioClient(): Promise<Client> {
  const child = server('stdio');
  const waiting = new Map<number, () => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const id = (JSON.parse(line) as { id: number }).id;
    waiting.get(id)?.();
    waiting.delete(id);
  });
  let next = 0;
  return {
    name: 'NDJSON over a child’s pipes (a stdio upstream)',
    serverPid: child.pid,
    call: () =>
      new Promise<void>((resolve) => {
        const id = ++next;
        waiting.set(id, resolve);
        child.stdin!.write(`${body(id)}\n`);
      }),
    close: () => void child.kill(),
  };
}

async function httpClients(concurrency: number): Promise<{ clients: Client[]; stop(): void }> {
  const child = server('http');
  const port = await new Promise<number>((resolve) => createInterface({ input: child.stdout! }).once('line', (line) => resolve(Number(line.split(' ')[1]))));
  const origin = `http://127.0.0.1:${port}`;
  const agent = new Agent({ connections: 64 });
  const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const raw = await rawSockets(port, concurrency);
  let next = 0;
  const clients: Client[] = [
    {
      name: 'undici, Gatehouse’s own POST handler (an HTTP upstream)',
      call: async () => {
        const answer = await post(agent, { origin, path: '/mcp', headers: HEADERS, body: body(++next) }, 1 << 20).answer;
        JSON.parse(answer.text as string);
      },
      close: () => agent.close(),
    },
    {
      name: 'undici.request()',
      call: async () => {
        const response = await request(`${origin}/mcp`, { method: 'POST', headers: HEADERS, body: body(++next), dispatcher: agent });
        JSON.parse(await response.body.text());
      },
      close: () => undefined,
    },
    {
      name: 'node:http, keep-alive agent',
      call: () =>
        new Promise<void>((resolve, reject) => {
          const text = body(++next);
          const outgoing = httpRequest({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', agent: keepAlive, headers: { ...HEADERS, 'content-length': Buffer.byteLength(text) } }, (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => resolve(void JSON.parse(Buffer.concat(chunks).toString())));
          });
          outgoing.on('error', reject);
          outgoing.end(text);
        }),
      close: () => keepAlive.destroy(),
    },
    { name: 'a minimal HTTP/1.1 client on raw sockets', call: raw.call, close: raw.close },
  ];
  for (const client of clients) client.serverPid = child.pid;
  return { clients, stop: () => void child.kill() };
}

/** One socket per concurrent caller; an answer is framed by its content-length (the echo always sends one). */
async function rawSockets(port: number, count: number): Promise<{ call: () => Promise<void>; close(): void }> {
  const idle: { socket: Socket; done?: () => void }[] = [];
  const all: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise((resolve) => socket.once('connect', resolve));
    const slot: { socket: Socket; done?: () => void } = { socket };
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const headEnd = pending.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(pending.subarray(0, headEnd).toString('latin1'))![1]);
      if (pending.length < headEnd + 4 + length) return;
      JSON.parse(pending.subarray(headEnd + 4, headEnd + 4 + length).toString());
      pending = pending.subarray(headEnd + 4 + length);
      const done = slot.done!;
      slot.done = undefined;
      idle.push(slot);
      done();
    });
    idle.push(slot);
    all.push(socket);
  }
  let next = 0;
  return {
    call: () =>
      new Promise<void>((resolve) => {
        const slot = idle.pop()!;
        slot.done = resolve;
        const text = body(++next);
        slot.socket.write(`POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
      }),
    close: () => all.forEach((socket) => socket.destroy()),
  };
}

/** µs of CPU per request over one batch: this process's, and the server process's (to 10 ms, /proc's tick). */
async function cpuPerRequest(client: Client, requests: number, concurrency: number): Promise<{ client: number; server: number }> {
  const before = process.cpuUsage();
  const serverBefore = cpuMs(client.serverPid!)!;
  await closedLoop(client.call, requests, concurrency);
  const used = process.cpuUsage(before);
  return { client: (used.user + used.system) / requests, server: ((cpuMs(client.serverPid!)! - serverBefore) * 1000) / requests };
}

export async function printClientFloorsBench(): Promise<void> {
  const requests = Number(process.env.BENCH_FLOOR_REQUESTS ?? 20_000);
  const rounds = Number(process.env.BENCH_FLOOR_ROUNDS ?? 3);
  const concurrencies = (process.env.BENCH_CONCURRENCY ?? '1,16').split(',').map(Number);
  console.log(`\nClient floors: CPU per request (µs), by transport, of the client and of the JSON-RPC echo it calls in another process; ${requests} requests a batch after as many of warm-up, median of ${rounds} rounds`);
  console.log(`| transport | ${concurrencies.map((c) => `client, c=${c} | server, c=${c}`).join(' | ')} |\n|---|${concurrencies.map(() => '---|---|').join('')}`);
  const figures = new Map<string, { client: number; server: number }[]>();
  for (const concurrency of concurrencies) {
    const http = await httpClients(concurrency);
    const clients = [await stdioClient(), ...http.clients];
    const perRound = new Map<string, { client: number; server: number }[]>(clients.map((c) => [c.name, []]));
    for (const client of clients) await closedLoop(client.call, requests, concurrency);
    for (let round = 0; round < rounds; round++) for (const client of clients) perRound.get(client.name)!.push(await cpuPerRequest(client, requests, concurrency));
    for (const [name, samples] of perRound) figures.set(name, [...(figures.get(name) ?? []), { client: median(samples.map((s) => s.client)), server: median(samples.map((s) => s.server)) }]);
    await Promise.all(clients.map((c) => c.close()));
    http.stop();
  }
  for (const [name, byConcurrency] of figures) console.log(`| ${name} | ${byConcurrency.map((us) => `${us.client.toFixed(1)} | ${us.server.toFixed(0)}`).join(' | ')} |`);
  console.log(JSON.stringify({ bench: 'client-floors', requests, rounds, concurrencies, usPerRequest: Object.fromEntries(figures) }));
}
