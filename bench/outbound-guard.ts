/**
 * What the SSRF guard costs (adapters/http/outbound-guard.ts), in process: a request on a new connection each time
 * (keep-alive off, so every request connects) to an HTTP server on loopback, through the guard's dispatcher
 * (resolve `localhost`, check every address, connect to the checked one) against a plain undici Agent (which
 * resolves and connects), and the check alone on a name with two public addresses (the resolver answering at once).
 * Reports µs per request and the ratio, the median over rounds. Env: BENCH_OUTBOUND_REQUESTS (2000 per round),
 * BENCH_OUTBOUND_ROUNDS (5).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { OutboundGuard } from '../adapters/http/outbound-guard.ts';
import { median } from './stats.ts';

export async function printOutboundGuardBench(): Promise<void> {
  const requests = Number(process.env.BENCH_OUTBOUND_REQUESTS ?? 2_000);
  const rounds = Number(process.env.BENCH_OUTBOUND_ROUNDS ?? 5);
  const server = createServer((_req, res) => res.end('ok'));
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://localhost:${(server.address() as AddressInfo).port}/`;
  const fresh = { pipelining: 0 };
  const plain = new Agent(fresh);
  const guarded = new OutboundGuard({ allowPrivate: [], allowLoopback: true }).dispatcher(fresh);
  const checkOnly = new OutboundGuard({ allowPrivate: [], allowLoopback: false }, async () => ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:c8e1']);
  const send = (dispatcher: Dispatcher) => async () => {
    const response = await request(url, { dispatcher, headers: { connection: 'close' } });
    await response.body.dump();
  };
  const cases: [string, number, () => Promise<unknown>][] = [
    ['plain undici Agent, new connection', requests, send(plain)],
    ['guard dispatcher, new connection', requests, send(guarded)],
    ['guard check alone (2 public addresses)', requests * 10, () => checkOnly.check('https://api.example.com/mcp')],
  ];
  try {
    const perCase = new Map<string, number[]>(cases.map(([name]) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const [name, n, run] of cases) {
        const started = performance.now();
        for (let i = 0; i < n; i++) await run();
        perCase.get(name)!.push(((performance.now() - started) * 1000) / n);
      }
    }
    console.log(`\nThe SSRF guard, in process: ${requests} requests per round, each on a new loopback connection, median of ${rounds} rounds`);
    console.log('| case | µs per request |\n|---|---|');
    const figures: Record<string, number> = {};
    for (const [name] of cases) {
      figures[name] = median(perCase.get(name)!);
      console.log(`| ${name} | ${figures[name]!.toFixed(1)} |`);
    }
    const ratio = figures['guard dispatcher, new connection']! / figures['plain undici Agent, new connection']!;
    console.log(`guarded / plain: ${ratio.toFixed(2)}`);
    console.log(JSON.stringify({ bench: 'outbound-guard', requests, rounds, usPerRequest: figures, ratio }));
  } finally {
    await Promise.all([plain.close(), guarded.close()]);
    await new Promise((resolve) => server.close(resolve));
  }
}
