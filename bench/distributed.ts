/**
 * Distributed mode against embedded mode, in the same run on the same machine: a governed echo call (allow) over
 * Streamable HTTP (2025 sessions). Embedded: one `gatehouse start` with its stdio upstream. Distributed: nats-server
 * and redis-server started here, 2 gateway replicas (`gatehouse start`, mode distributed) and 2 workers
 * (`gatehouse worker --pool bench`) hosting the echo upstream; the load is split over both replicas. Reports p50,
 * p99 and calls/s at each concurrency, the p50 distributed mode adds (target ≤ 2 ms at concurrency 1), and the
 * Redis commands and NATS messages per call (from Redis INFO and the NATS monitoring endpoint, during a batch;
 * the heartbeats and pool polls that run anyway are included, a few per second).
 * Env: BENCH_DIST_CALLS (calls per batch at concurrency 1; 3x that above), BENCH_DIST_ROUNDS (3).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { McpHttpClient } from './http-client.ts';
import { closedLoop, type LoadFigures } from './load.ts';
import { freePort, killAll, type Child } from './processes.ts';
import { median } from './stats.ts';
import { ALLOW_POLICY, startGatehouseHttp, startGatehouseWithConfig, startGatehouseWorker, stdioEcho, writeConfig, type HttpTarget } from './targets.ts';
import { startServerProcess, type ServerProcess } from '../test/helpers/server-process.ts';

const CONCURRENCY = [1, 16, 64];
const TARGET_ADDED_P50_MS = 2;
const TOOL = 'echo__echo';

interface Side {
  label: string;
  /** One call, on the next client in turn (distributed: the replicas alternate). */
  call(): Promise<void>;
  close(): Promise<void>;
}

export async function printDistributedBench(): Promise<void> {
  const calls = Number(process.env.BENCH_DIST_CALLS ?? 1_000);
  const rounds = Number(process.env.BENCH_DIST_ROUNDS ?? 3);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-dist-'));
  const servers: ServerProcess[] = [];
  const children: (HttpTarget | Child)[] = [];
  try {
    const monitorPort = await freePort();
    const nats = await startServerProcess('nats-server', (port) => ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)]);
    const redisServer = await startServerProcess('redis-server', (port, dir) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']);
    servers.push(nats, redisServer);
    const embedded = await startGatehouseHttp('embedded', 'embedded', { policy: ALLOW_POLICY, workDir });
    children.push(embedded);
    const config = writeConfig(workDir, 'distributed', {
      mode: 'distributed',
      nats: { url: `nats://127.0.0.1:${nats.port}` },
      redis: { url: `redis://127.0.0.1:${redisServer.port}` },
      approvals: { signingKey: 'bench-signing-key-0123456789abcdef0123456789' },
      listen: { http: '127.0.0.1:0', stdio: false },
      upstreams: { echo: { ...stdioEcho(), pool: 'bench' } },
      policies: [ALLOW_POLICY],
      log: { level: 'warn' },
    });
    children.push(...(await Promise.all([startGatehouseWorker('worker-1', config, 'bench'), startGatehouseWorker('worker-2', config, 'bench')])));
    const replicas = await Promise.all([startGatehouseWithConfig('replica-1', 'replica 1', config), startGatehouseWithConfig('replica-2', 'replica 2', config)]);
    children.push(...replicas);
    await new Promise((r) => setTimeout(r, 2_500)); // both replicas hear both workers' heartbeats

    const redis = new Redis(`redis://127.0.0.1:${redisServer.port}`);
    const figures = new Map<string, LoadFigures[]>();
    let ops: { redis: number; nats: number } | undefined;
    try {
      for (const concurrency of CONCURRENCY) {
        const batch = concurrency === 1 ? calls : calls * 3;
        const sides = [await side('embedded', [embedded.url], concurrency), await side('distributed', replicas.map((r) => r.url), concurrency)];
        try {
          for (const s of sides) await closedLoop(s.call, Math.min(300, batch), concurrency); // warm up
          for (let round = 0; round < rounds; round++) {
            for (const s of sides) {
              const counting = s.label === 'distributed' && concurrency === 16 && round === 0;
              const before = counting ? await counters(redis, monitorPort) : undefined;
              const result = await closedLoop(s.call, batch, concurrency);
              if (before) {
                const after = await counters(redis, monitorPort);
                ops = { redis: (after.redis - before.redis) / batch, nats: (after.nats - before.nats) / batch };
              }
              const key = `${s.label}@${concurrency}`;
              figures.set(key, [...(figures.get(key) ?? []), result]);
            }
          }
        } finally {
          await Promise.all(sides.map((s) => s.close()));
        }
      }
    } finally {
      redis.disconnect();
    }
    printTable(figures, ops, rounds);
  } finally {
    await Promise.allSettled(children.map((c) => c.stop()));
    await Promise.allSettled(servers.map((s) => s.stop()));
    killAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Clients for one side: the connections split over its URLs, calls taking the URLs in turn. */
async function side(label: string, urls: string[], concurrency: number): Promise<Side> {
  const clients = urls.map((url) => new McpHttpClient(url, 'legacy', Math.max(1, Math.ceil(concurrency / urls.length))));
  await Promise.all(clients.map((c) => c.connect()));
  let turn = 0;
  return {
    label,
    call: () => clients[turn++ % clients.length].echo(TOOL),
    close: async () => void (await Promise.all(clients.map((c) => c.close()))),
  };
}

/** Redis commands processed and NATS messages in and out so far. */
async function counters(redis: Redis, monitorPort: number): Promise<{ redis: number; nats: number }> {
  const info = await redis.info('stats');
  const commands = Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
  const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as { in_msgs: number; out_msgs: number };
  return { redis: commands, nats: varz.in_msgs + varz.out_msgs };
}

function printTable(figures: Map<string, LoadFigures[]>, ops: { redis: number; nats: number } | undefined, rounds: number): void {
  const med = (key: string, pick: (f: LoadFigures) => number) => median((figures.get(key) ?? []).map(pick));
  console.log(`\nDistributed mode (2 replicas + 2 workers on NATS and Redis) vs embedded, echo allow over HTTP, median of ${rounds} rounds`);
  console.log('concurrency | embedded p50 / p99 ms | calls/s | distributed p50 / p99 ms | calls/s | added p50 ms | calls/s ratio');
  for (const c of CONCURRENCY) {
    const e = (pick: (f: LoadFigures) => number) => med(`embedded@${c}`, pick);
    const d = (pick: (f: LoadFigures) => number) => med(`distributed@${c}`, pick);
    const added = d((f) => f.p50Ms) - e((f) => f.p50Ms);
    console.log(
      `${String(c).padStart(11)} | ${e((f) => f.p50Ms).toFixed(2)} / ${e((f) => f.p99Ms).toFixed(2)} | ${e((f) => f.callsPerSec).toFixed(0)} | ${d((f) => f.p50Ms).toFixed(2)} / ${d((f) => f.p99Ms).toFixed(2)} | ${d((f) => f.callsPerSec).toFixed(0)} | ${added.toFixed(2)} | ${(d((f) => f.callsPerSec) / e((f) => f.callsPerSec)).toFixed(2)}`,
    );
  }
  const added1 = med('distributed@1', (f) => f.p50Ms) - med('embedded@1', (f) => f.p50Ms);
  console.log(`target: added p50 at concurrency 1 ≤ ${TARGET_ADDED_P50_MS} ms: ${added1 <= TARGET_ADDED_P50_MS ? 'PASS' : 'MISS'} (${added1.toFixed(2)} ms)`);
  if (ops) console.log(`per call (distributed, concurrency 16): ${ops.redis.toFixed(2)} Redis commands, ${ops.nats.toFixed(2)} NATS messages (in + out, as the server counts them)`);
}
