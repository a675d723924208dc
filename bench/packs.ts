/**
 * `npm run bench -- packs`: what packs cost. Load: the default policy with the bundled packs installed (every pack
 * file read, validated, hashed) against the default policy alone. Decide: p50 / p99 of a decision on the postgres
 * pack's query tool (its conditions read every statement with sqlStatements), on the shell pack's start_process (its
 * conditions read every command with shellCommands), on the filesystem pack's read and on the browser pack's key
 * press (a condition on the key), against the same calls under the default policy alone. Medians over rounds, in one
 * process.
 * Env: BENCH_PACKS_ROUNDS (5), BENCH_PACKS_DECISIONS (20000 per round).
 */
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { loadPolicyFiles } from '../src/kernel/bundle.ts';
import { Kernel } from '../src/kernel/kernel.ts';
import type { DecisionInput } from '../src/kernel/decision.ts';
import { loadPolicyBundle } from '../src/packs/policy-bundle.ts';
import { packPlaces } from '../src/packs/places.ts';
import { median, percentile } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_PACKS_ROUNDS ?? 5);
const DECISIONS = Number(process.env.BENCH_PACKS_DECISIONS ?? 20_000);
const DEFAULT_POLICY = join(import.meta.dirname, '..', 'policies', 'default.yaml');
const INSTALLS = [
  { name: 'filesystem', params: { workspace: '/srv/ws' } },
  { name: 'memory', params: {} },
  { name: 'postgres', params: {} },
  { name: 'shell', params: { workspace: '/srv/ws', allowCommands: ['git status', 'ls'] } },
  { name: 'github', params: {} },
  { name: 'browser', params: { allowHosts: ['docs.example.com', '*.example.org'] } },
];

const call = (server: string, tool: string, args: Record<string, unknown>): DecisionInput => ({ tenant: 'default', principal: 'p', server, tool: `${server}__${tool}`, annotations: undefined, args });
const CALLS: Record<string, DecisionInput> = {
  'postgres query (3 statements)': call('postgres', 'query', { sql: "/* report */ SELECT id, name FROM users WHERE name <> 'x; drop'; SELECT count(*) FROM orders; WITH r AS (SELECT 1) SELECT * FROM r" }),
  'shell command (3 commands)': call('desktop-commander', 'start_process', { command: "cd /srv/ws && git status; ls -la | grep 'x; rm -rf /'" }),
  'filesystem read': call('filesystem', 'read_text_file', { path: '/srv/ws/notes/today.md' }),
  'browser key press': call('browser', 'browser_press_key', { key: 'Tab' }),
};

function timeMs(fn: () => unknown): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

function decideUs(kernel: Kernel, input: DecisionInput): { p50: number; p99: number } {
  const samples: number[] = [];
  for (let i = 0; i < DECISIONS; i++) {
    const start = performance.now();
    kernel.decide(input);
    samples.push((performance.now() - start) * 1000);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

export function printPacksBench(): void {
  const places = packPlaces(mkdtempSync(join(tmpdir(), 'gatehouse-bench-packs-')));
  const load = { base: [] as number[], packs: [] as number[] };
  const decide: Record<string, { base: number[]; packs: number[]; baseP99: number[]; packsP99: number[] }> = {};
  for (let round = 0; round < ROUNDS; round++) {
    load.base.push(timeMs(() => loadPolicyFiles([DEFAULT_POLICY])));
    load.packs.push(timeMs(() => loadPolicyBundle([DEFAULT_POLICY], INSTALLS, places)));
    const base = new Kernel(loadPolicyFiles([DEFAULT_POLICY]));
    const packs = new Kernel(loadPolicyBundle([DEFAULT_POLICY], INSTALLS, places));
    for (const [name, input] of Object.entries(CALLS)) {
      const d = (decide[name] ??= { base: [], packs: [], baseP99: [], packsP99: [] });
      const b = decideUs(base, input);
      const p = decideUs(packs, input);
      d.base.push(b.p50);
      d.baseP99.push(b.p99);
      d.packs.push(p.p50);
      d.packsP99.push(p.p99);
    }
  }
  const f = (n: number) => n.toFixed(n < 10 ? 2 : 1);
  console.log(`\nPacks (${ROUNDS} rounds; baseline: the default policy alone)`);
  console.log(`  load     default policy ${f(median(load.base))} ms; with ${INSTALLS.map((i) => i.name).join(', ')} installed ${f(median(load.packs))} ms (${(median(load.packs) / median(load.base)).toFixed(1)}x)`);
  for (const [name, d] of Object.entries(decide)) {
    console.log(`  decide   ${name}: p50 ${f(median(d.packs))} µs, p99 ${f(median(d.packsP99))} µs with the packs; ${f(median(d.base))} / ${f(median(d.baseP99))} µs without (${(median(d.packs) / median(d.base)).toFixed(1)}x at p50)`);
  }
}
