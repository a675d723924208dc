/**
 * Distributed mode against embedded mode, in the same run on the same machine: a governed echo call (allow) over
 * Streamable HTTP (2025 sessions). Embedded: one `gatehouse start` with its stdio upstream. Distributed: nats-server
 * and redis-server started here, N gateway replicas (`gatehouse start`, mode distributed) and 2 workers
 * (`gatehouse worker --pool bench`) hosting the echo upstream; the load is split over the replicas. For each replica
 * count (1, 2 and 3), embedded and distributed batches alternate, and it reports p50, p99 and calls/s at each
 * concurrency, the p50 distributed mode adds at concurrency 1 (target ≤ 1.0 ms), and what a call costs the servers,
 * which must not grow with the replicas:
 *   - NATS messages per call, in and out as the server counts them (/varz), at concurrency 1 and 16;
 *   - Redis commands per call as Redis counts them (INFO: a script's own commands count too), at 1 and 16;
 *   - at concurrency 1, the commands Redis was sent, from MONITOR over a batch of its own (so its cost stays out of
 *     the timed batches), by what they do: on the call's path (context, claim, result), the audit appends (the
 *     first one a job waits for before it is sent, the outcome's not), and the job ledger's, which no call waits for;
 *     and Redis's read events per call (requests as they arrived, a pipeline being one).
 * The heartbeats and pool polls that run anyway are included, a few per second.
 * Env: BENCH_REPLICAS ("1,2,3"), BENCH_DIST_CALLS (calls per batch at concurrency 1; 3x that above, 1 000),
 * BENCH_DIST_ROUNDS (3), BENCH_DIST_CONCURRENCY ("1,16"), BENCH_DIST_SAMPLE (calls watched with MONITOR, 200),
 * BENCH_DIST_WARMUP (calls per Gatehouse process before measuring, 10 000);
 * BENCH_GATEHOUSE_BIN (bench/targets.ts) measures another build of Gatehouse with this same bench.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { McpHttpClient } from './http-client.ts';
import { closedLoop, type LoadFigures } from './load.ts';
import { freePort, killAll, type Child } from './processes.ts';
import { median } from './stats.ts';
import { ALLOW_POLICY, startGatehouseHttp, startGatehouseWithConfig, startGatehouseWorker, stdioEcho, writeConfig, type HttpTarget } from './targets.ts';
import { startServerProcess, type ServerProcess } from '../test/helpers/server-process.ts';

const TARGET_ADDED_P50_MS = 1.0;
const TOOL = 'echo__echo';
const WORKERS = 2;
/** What MONITOR's lines are counted as: the kinds of command a call sends to Redis. */
const KINDS = ['path', 'audit', 'ledger', 'other'] as const;
type Kind = (typeof KINDS)[number];

interface Side {
  label: string;
  /** One call, on the next client in turn (distributed: the replicas alternate). */
  call(): Promise<void>;
  close(): Promise<void>;
}

/** What one call cost the servers, averaged over a batch. */
interface PerCall {
  nats: number;
  redis: number;
}

/** What MONITOR saw per call at concurrency 1. */
interface Sampled extends Record<Kind, number> {
  reads: number;
  inner: number;
  nats: number;
}

interface ReplicaFigures {
  replicas: number;
  loads: Map<string, LoadFigures[]>;
  atLoad?: PerCall;
  sampled: Sampled;
  load: number;
}

const numbers = (value: string | undefined, fallback: number[]) => (value ? value.split(',').map(Number) : fallback);

export async function printDistributedBench(): Promise<void> {
  const calls = Number(process.env.BENCH_DIST_CALLS ?? 1_000);
  const rounds = Number(process.env.BENCH_DIST_ROUNDS ?? 3);
  const sample = Number(process.env.BENCH_DIST_SAMPLE ?? 200);
  const replicaCounts = numbers(process.env.BENCH_REPLICAS, [1, 2, 3]);
  const concurrencies = numbers(process.env.BENCH_DIST_CONCURRENCY, [1, 16]);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-dist-'));
  const servers: ServerProcess[] = [];
  const children: (HttpTarget | Child)[] = [];
  const results: ReplicaFigures[] = [];
  try {
    const monitorPort = await freePort();
    const nats = await startServerProcess('nats-server', (port) => ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)]);
    const redisServer = await startServerProcess('redis-server', (port, dir) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']);
    servers.push(nats, redisServer);
    // A wall-clock decision budget a loaded machine cannot miss: a denied call would end the run, and it is not what is measured.
    const kernel = { decisionBudget: '10s' };
    const embedded = await startGatehouseHttp('embedded', 'embedded', { policy: ALLOW_POLICY, workDir, extra: { kernel } });
    children.push(embedded);
    const config = writeConfig(workDir, 'distributed', {
      mode: 'distributed',
      nats: { url: `nats://127.0.0.1:${nats.port}` },
      redis: { url: `redis://127.0.0.1:${redisServer.port}` },
      approvals: { signingKey: 'bench-signing-key-0123456789abcdef0123456789' },
      listen: { http: '127.0.0.1:0', stdio: false },
      upstreams: { echo: { ...stdioEcho(), pool: 'bench' } },
      policies: [ALLOW_POLICY],
      kernel,
      log: { level: 'warn' },
    });
    children.push(...(await Promise.all(Array.from({ length: WORKERS }, (_, i) => startGatehouseWorker(`worker-${i + 1}`, config, 'bench')))));
    const redis = new Redis(`redis://127.0.0.1:${redisServer.port}`);
    const counters = () => countersOf(redis, monitorPort);
    try {
      for (const count of replicaCounts) {
        const replicas = await Promise.all(Array.from({ length: count }, (_, i) => startGatehouseWithConfig(`replica-${i + 1}`, `replica ${i + 1}`, config)));
        try {
          await new Promise((r) => setTimeout(r, 2_500)); // every replica hears every worker's heartbeats
          results.push(await measureReplicas(count, embedded, replicas, { calls, rounds, sample, concurrencies, warmEmbedded: results.length === 0 }, redisServer.port, counters));
        } finally {
          await Promise.allSettled(replicas.map((r) => r.stop()));
        }
      }
    } finally {
      redis.disconnect();
    }
    printTables(results, concurrencies, rounds);
  } finally {
    await Promise.allSettled(children.map((c) => c.stop()));
    await Promise.allSettled(servers.map((s) => s.stop()));
    killAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function measureReplicas(
  count: number,
  embedded: HttpTarget,
  replicas: HttpTarget[],
  settings: { calls: number; rounds: number; sample: number; concurrencies: number[]; /** The embedded process is the same for every replica count: warmed before the first. */ warmEmbedded: boolean },
  redisPort: number,
  counters: () => Promise<Counters>,
): Promise<ReplicaFigures> {
  const loads = new Map<string, LoadFigures[]>();
  let atLoad: PerCall | undefined;
  let sampled: Sampled | undefined;
  const load = loadavg()[0];
  const warming: [string, string[]][] = [['distributed', replicas.map((r) => r.url)]];
  if (settings.warmEmbedded) warming.unshift(['embedded', [embedded.url]]);
  await warmUp(warming, Math.max(...settings.concurrencies));
  for (const concurrency of settings.concurrencies) {
    const batch = concurrency === 1 ? settings.calls : settings.calls * 3;
    const sides = [await side('embedded', [embedded.url], concurrency), await side('distributed', replicas.map((r) => r.url), concurrency)];
    try {
      for (const s of sides) await closedLoop(s.call, Math.min(300, batch), concurrency); // the connections, at this concurrency
      if (concurrency === 1) sampled = await monitored(sides[1], settings.sample, redisPort, counters);
      for (let round = 0; round < settings.rounds; round++) {
        for (const s of sides) {
          const counting = s.label === 'distributed' && concurrency > 1 && round === 0;
          const before = counting ? await counters() : undefined;
          const result = await closedLoop(s.call, batch, concurrency);
          if (before) atLoad = perCall(before, await counters(), batch);
          const key = `${s.label}@${concurrency}`;
          loads.set(key, [...(loads.get(key) ?? []), result]);
        }
      }
    } finally {
      await Promise.all(sides.map((s) => s.close()));
    }
  }
  return { replicas: count, loads, ...(atLoad ? { atLoad } : {}), sampled: sampled ?? emptySample(), load };
}

/**
 * Calls per Gatehouse process (the embedded one, each replica) before the first measured batch: V8 takes 10,000 and
 * more calls to finish optimizing the governed path (see `warmup` in settings.ts).
 */
const WARMUP_PER_PROCESS = Number(process.env.BENCH_DIST_WARMUP ?? 10_000);

async function warmUp(sides: [string, string[]][], concurrency: number): Promise<void> {
  for (const [label, urls] of sides) {
    const s = await side(label, urls, concurrency);
    try {
      await closedLoop(s.call, WARMUP_PER_PROCESS * urls.length, concurrency);
    } finally {
      await s.close();
    }
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

interface Counters {
  commands: number;
  reads: number;
  nats: number;
}

/** Redis commands processed and read events so far, and NATS messages in and out. */
async function countersOf(redis: Redis, monitorPort: number): Promise<Counters> {
  const info = await redis.info('stats');
  const stat = (name: string) => Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? NaN);
  const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as { in_msgs: number; out_msgs: number };
  return { commands: stat('total_commands_processed'), reads: stat('total_reads_processed'), nats: varz.in_msgs + varz.out_msgs };
}

const perCall = (before: Counters, after: Counters, calls: number): PerCall => ({ redis: (after.commands - before.commands) / calls, nats: (after.nats - before.nats) / calls });

/**
 * `calls` calls one after another with Redis MONITOR on: what each call sent Redis, by kind. The counters' own
 * INFO requests (two, and MONITOR's) are left out of the read events.
 */
async function monitored(s: Side, calls: number, redisPort: number, counters: () => Promise<Counters>): Promise<Sampled> {
  const watcher = new Redis(`redis://127.0.0.1:${redisPort}`);
  const monitor = await watcher.monitor();
  // ioredis may take a line that arrives as MONITOR is closed for a reply out of turn: that ends the sample, not the run.
  monitor.on('error', () => undefined);
  const seen: Record<Kind, number> & { inner: number } = { path: 0, audit: 0, ledger: 0, other: 0, inner: 0 };
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') seen.inner++;
    else if (args[0]?.toLowerCase() !== 'info') seen[kindOf(args)]++;
  });
  try {
    await settle();
    const before = await counters();
    await closedLoop(s.call, calls, 1);
    await settle(); // the outcome's audit append and the ledger's finish come after the answer
    const after = await counters();
    const per = (n: number) => n / calls;
    return { path: per(seen.path), audit: per(seen.audit), ledger: per(seen.ledger), other: per(seen.other), inner: per(seen.inner), reads: per(after.reads - before.reads - 1), nats: per(after.nats - before.nats) };
  } finally {
    monitor.disconnect();
    watcher.disconnect();
  }
}

const settle = () => new Promise((r) => setTimeout(r, 300));

/** A command by its keys: the job's payload pointers and claim, the audit chain, the job ledger. */
function kindOf(args: string[]): Kind {
  const keys = args.slice(1, 6).join(' ');
  if (/:kv:(ctx|res|claim):/.test(keys)) return 'path';
  if (/:audit:/.test(keys)) return 'audit';
  if (/:jobs:/.test(keys)) return 'ledger';
  return 'other';
}

const emptySample = (): Sampled => ({ path: NaN, audit: NaN, ledger: NaN, other: NaN, inner: NaN, reads: NaN, nats: NaN });

function printTables(results: ReplicaFigures[], concurrencies: number[], rounds: number): void {
  console.log(`\nDistributed mode (N replicas + ${WORKERS} workers on NATS and Redis) vs embedded, echo allow over HTTP, median of ${rounds} rounds, embedded and distributed batches alternating`);
  console.log('replicas | concurrency | embedded p50 / p99 ms | calls/s | distributed p50 / p99 ms | calls/s | added p50 ms | calls/s ratio');
  for (const r of results) {
    const med = (key: string, pick: (f: LoadFigures) => number) => median((r.loads.get(key) ?? []).map(pick));
    for (const c of concurrencies) {
      const e = (pick: (f: LoadFigures) => number) => med(`embedded@${c}`, pick);
      const d = (pick: (f: LoadFigures) => number) => med(`distributed@${c}`, pick);
      console.log(
        `${String(r.replicas).padStart(8)} | ${String(c).padStart(11)} | ${e((f) => f.p50Ms).toFixed(2)} / ${e((f) => f.p99Ms).toFixed(2)} | ${e((f) => f.callsPerSec).toFixed(0)} | ${d((f) => f.p50Ms).toFixed(2)} / ${d((f) => f.p99Ms).toFixed(2)} | ${d((f) => f.callsPerSec).toFixed(0)} | ${(d((f) => f.p50Ms) - e((f) => f.p50Ms)).toFixed(2)} | ${(d((f) => f.callsPerSec) / e((f) => f.callsPerSec)).toFixed(2)}`,
      );
    }
  }
  const atLoad = concurrencies.find((c) => c > 1);
  console.log(`\nPer call, by replica count (concurrency 1 with MONITOR on a batch of its own${atLoad ? `; and at concurrency ${atLoad}` : ''})`);
  console.log(`replicas | NATS msgs c=1${atLoad ? ` / c=${atLoad}` : ''} | Redis commands (INFO)${atLoad ? ` c=${atLoad}` : ''} | sent to Redis c=1: path + audit + ledger + other = total | script-inner | read events | load avg`);
  for (const r of results) {
    const s = r.sampled;
    const sent = s.path + s.audit + s.ledger + s.other;
    console.log(
      `${String(r.replicas).padStart(8)} | ${s.nats.toFixed(2)}${r.atLoad ? ` / ${r.atLoad.nats.toFixed(2)}` : ''} | ${r.atLoad ? r.atLoad.redis.toFixed(2) : '-'} | ${s.path.toFixed(2)} + ${s.audit.toFixed(2)} + ${s.ledger.toFixed(2)} + ${s.other.toFixed(2)} = ${sent.toFixed(2)} | ${s.inner.toFixed(2)} | ${s.reads.toFixed(2)} | ${r.load.toFixed(2)}`,
    );
  }
  for (const r of results) {
    const added = median(r.loads.get('distributed@1')?.map((f) => f.p50Ms) ?? []) - median(r.loads.get('embedded@1')?.map((f) => f.p50Ms) ?? []);
    if (Number.isFinite(added)) console.log(`target (${r.replicas} replica${r.replicas > 1 ? 's' : ''}): added p50 at concurrency 1 ≤ ${TARGET_ADDED_P50_MS} ms: ${added <= TARGET_ADDED_P50_MS ? 'PASS' : 'MISS'} (${added.toFixed(2)} ms)`);
  }
}
