/**
 * `npm run bench -- startup`: how long `gatehouse wrap` takes to answer its first `tools/list`, against the same
 * server started and asked alone (a real compiled server: @modelcontextprotocol/server-filesystem), and what it
 * holds idle. Three ways, interleaved, each from spawn to the answer of initialize + tools/list: the server alone,
 * `gatehouse wrap` as it ships (the compiled dist/), and wrap from source through tsx (GATEHOUSE_FROM_SOURCE=1,
 * what every start cost before dist/). Env: BENCH_STARTUP_ROUNDS (default 9).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McpStdioClient } from './stdio-client.ts';
import { rssMiB, spawnChild } from './processes.ts';
import { median } from './stats.ts';
import { GATEHOUSE, ROOT } from './targets.ts';

const SERVER = join(ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
const TARGET_MS = 300;

interface Way {
  label: string;
  args: (work: string, data: string) => string[];
  env?: NodeJS.ProcessEnv;
  times: number[];
  rss: number[];
}

/** Spawn to the tools/list answer (ms), and the process's RSS (MiB) a second after, idle. */
async function startOnce(way: Way, work: string, data: string): Promise<void> {
  const began = performance.now();
  const child = spawnChild(way.label, process.execPath, way.args(work, data), { cwd: ROOT, protocolStdout: true, env: { ...process.env, ...way.env } });
  try {
    const client = new McpStdioClient(child.proc.stdin!, child.proc.stdout!);
    await client.connect();
    const tools = await client.listTools();
    way.times.push(performance.now() - began);
    if (tools.length === 0) throw new Error(`${way.label} listed no tools`);
    await new Promise((r) => setTimeout(r, 1000));
    const rss = rssMiB(child.pid);
    if (rss !== undefined) way.rss.push(rss);
  } finally {
    await child.stop();
  }
}

export async function printStartupBench(): Promise<void> {
  const rounds = Number(process.env.BENCH_STARTUP_ROUNDS ?? 9);
  const work = mkdtempSync(join(tmpdir(), 'gh-startup-'));
  const wrap = (work: string, data: string) => [GATEHOUSE, 'wrap', '--data-dir', data, '--name', 'filesystem', '--', process.execPath, SERVER, work];
  const ways: Way[] = [
    { label: 'the server alone', args: (w) => [SERVER, w], times: [], rss: [] },
    { label: 'gatehouse wrap (compiled)', args: wrap, times: [], rss: [] },
    { label: 'gatehouse wrap from source (tsx)', args: wrap, env: { GATEHOUSE_FROM_SOURCE: '1' }, times: [], rss: [] },
    { label: 'node, doing nothing', args: () => ['-e', 'setInterval(() => {}, 1000)'], times: [], rss: [] },
  ];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const way of ways.slice(0, 3)) await startOnce(way, work, mkdtempSync(join(tmpdir(), 'gh-startup-data-')));
    }
    const idle = spawnChild('node', process.execPath, ways[3].args(work, work), { cwd: ROOT });
    await new Promise((r) => setTimeout(r, 1000));
    ways[3].rss.push(rssMiB(idle.pid) ?? NaN);
    await idle.stop();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const alone = median(ways[0].times);
  console.log(`\nStart-up: spawn to the first tools/list answer, median of ${rounds} (server-filesystem; wrap applies its bundled pack)`);
  console.log(`${'way'.padEnd(36)} ${'ms'.padStart(8)} ${'over alone'.padStart(11)} ${'idle RSS MiB'.padStart(13)}`);
  for (const way of ways) {
    const ms = way.times.length > 0 ? median(way.times) : undefined;
    const over = ms === undefined ? '' : `+${(ms - alone).toFixed(0)}`;
    console.log(`${way.label.padEnd(36)} ${ms === undefined ? '-'.padStart(8) : ms.toFixed(0).padStart(8)} ${over.padStart(11)} ${median(way.rss).toFixed(0).padStart(13)}`);
  }
  const added = median(ways[1].times) - alone;
  console.log(`target: wrap within ${TARGET_MS} ms of the server alone: ${added <= TARGET_MS ? 'met' : 'MISSED'} (+${added.toFixed(0)} ms)`);
}
