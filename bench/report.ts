/** Turns the rounds into what a reader needs: tables of medians, ratio lines with PASS/MISS, one JSON line. */
import { availableParallelism } from 'node:os';
import type { Era } from './http-client.ts';
import type { Comparison } from './lineup.ts';
import type { LoadFigures } from './load.ts';
import type { Settings } from './settings.ts';
import { median } from './stats.ts';

/** One measured batch: its load figures and the server's CPU per call (µs; `cpuTreeUs` adds its child processes). */
export interface Batch extends LoadFigures {
  cpuUs?: number;
  cpuTreeUs?: number;
}

export interface Results {
  settings: Settings;
  http: { key: string; label: string; era: Era; runs: Map<number, Batch[]> }[];
  stdio: { key: string; label: string; runs: Batch[] }[];
  rss: { label: string; idle?: number; afterRun?: number }[];
  comparisons: Comparison[];
  /** The 1-minute load average after each batch. */
  loadAverages?: number[];
}

interface Figures extends LoadFigures {
  /** Half the range of calls/s over the rounds, as a share of the median: how noisy this figure was. */
  spread: number;
  cpuUs?: number;
  cpuTreeUs?: number;
}

interface Ratio {
  variant: string;
  name: string;
  concurrency: number | 'seq';
  value: number;
  /** Absent for an informational ratio, which says why in `note`. */
  target?: { bound: 'max' | 'min'; value: number };
  note?: string;
  /** `µs`: a difference in microseconds rather than a ratio. */
  unit?: 'µs';
}

const ERA_TITLES: Record<Era, string> = {
  legacy: 'Streamable HTTP, 2025-11-25 sessionful (initialize once, then Mcp-Session-Id on every POST)',
  modern: 'Streamable HTTP, 2026-07-28 stateless (the `_meta` envelope on every request)',
};

export function printReport(results: Results): void {
  const { settings } = results;
  const http = new Map(results.http.map((s) => [s.key, { ...s, at: new Map([...s.runs].map(([c, runs]) => [c, summarize(runs)])) }]));
  const stdio = new Map(results.stdio.map((s) => [s.key, { ...s, figures: summarize(s.runs) }]));

  console.log(`\nGatehouse benchmark: Node ${process.version} (every server runs on this same binary), ${process.platform}/${process.arch}, ${availableParallelism()} CPUs`);
  console.log(`${settings.rounds} interleaved rounds; each figure is the median over rounds of one batch of ${settings.calls} calls (HTTP) or ${settings.stdioCalls} sequential calls (stdio).`);
  console.log('Every target serves the same echo tool (bench/echo-server.ts, SDK v2 McpServer). Load: raw JSON-RPC POSTs over an undici pool, one session, closed loop.');
  console.log('±% = half the range of calls/s over the rounds, relative to the median.');
  const loads = results.loadAverages ?? [];
  if (loads.length) console.log(`Load average (1 min) after the batches: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}, median ${median(loads).toFixed(1)} (${availableParallelism()} CPUs): figures only compare at like loads.`);
  console.log('');
  for (const era of settings.eras) {
    const rows = [...http.values()].filter((s) => s.era === era).map((s) => ({ label: s.label, at: s.at }));
    if (rows.length) console.log(`${table(ERA_TITLES[era], rows, settings.concurrency)}\n`);
  }
  console.log(table('stdio, 2025-11-25, sequential calls (NDJSON over the child\'s pipes)', [...stdio.values()].map((s) => ({ label: s.label, at: new Map([[1, s.figures]]) })), [1]));

  console.log('\nMemory: VmRSS in MiB of the process itself (not its upstream child); idle = after startup and 20 calls');
  const width = Math.max(...results.rss.map((r) => r.label.length));
  for (const r of results.rss) console.log(`  ${r.label.padEnd(width)}  idle ${fmt(r.idle, 1, 6)}   after the run ${fmt(r.afterRun, 1, 6)}`);

  console.log('\nServer CPU per call, µs (user + system from /proc, 10 ms ticks; median over rounds): the front process / with its stdio upstream child');
  const cpuRows = [
    ...[...http.values()].map((s) => ({ label: `${s.label}${s.era === 'modern' ? ' [2026]' : ''}`, at: s.at })),
    ...[...stdio.values()].map((s) => ({ label: s.label, at: new Map([[1, s.figures]]) })),
  ];
  const cpuWidth = Math.max(...cpuRows.map((r) => r.label.length));
  for (const row of cpuRows) {
    const cells = [...row.at].map(([c, f]) => `c=${c} ${fmt(f.cpuUs, 0, 5)} / ${fmt(f.cpuTreeUs, 0, 5)}`);
    console.log(`  ${row.label.padEnd(cpuWidth)}  ${cells.join('   ')}`);
  }

  const ratios = computeRatios(results.comparisons, http, stdio, settings.concurrency);
  console.log('\nRatios: Gatehouse against the baselines measured above, PASS/MISS against each target');
  console.log(ratioLines(ratios));

  const summary = {
    node: process.version,
    cpus: availableParallelism(),
    settings,
    ...(loads.length ? { loadAverage: { min: round(Math.min(...loads), 1), median: round(median(loads), 1), max: round(Math.max(...loads), 1) } } : {}),
    http: Object.fromEntries([...http.values()].map((s) => [s.key, { era: s.era, label: s.label, ...Object.fromEntries([...s.at].map(([c, f]) => [`c${c}`, compact(f)])) }])),
    stdio: Object.fromEntries([...stdio.values()].map((s) => [s.key, { label: s.label, ...compact(s.figures) }])),
    rssMiB: results.rss.map((r) => ({ label: r.label, idle: r.idle === undefined ? null : round(r.idle, 1), afterRun: r.afterRun === undefined ? null : round(r.afterRun, 1) })),
    ratios: ratios.map((r) => ({
      variant: r.variant,
      ratio: r.name,
      concurrency: r.concurrency,
      value: round(r.value, 3),
      ...(r.unit ? { unit: r.unit } : {}),
      target: r.target ? `${r.target.bound === 'max' ? '<=' : '>='}${r.target.value}` : null,
      pass: r.target ? passes(r) : null,
    })),
  };
  console.log(`\nBENCH_JSON ${JSON.stringify(summary)}`);
}

function summarize(runs: Batch[]): Figures {
  const rates = runs.map((r) => r.callsPerSec);
  const callsPerSec = median(rates);
  const cpu = (pick: (r: Batch) => number | undefined) => {
    const values = runs.map(pick).filter((v): v is number => v !== undefined);
    return values.length ? median(values) : undefined;
  };
  return {
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    callsPerSec,
    spread: (Math.max(...rates) - Math.min(...rates)) / 2 / callsPerSec,
    cpuUs: cpu((r) => r.cpuUs),
    cpuTreeUs: cpu((r) => r.cpuTreeUs),
  };
}

/**
 * The targets of issue 17, each against its baseline from the same run: the gateway's own CPU per call against
 * mcp-proxy's (the front processes alone) at the highest concurrency, p50 and p99 against the direct SDK server at
 * the lowest, CPU in front of an HTTP upstream against in front of a stdio one, and the p50 the stdio hop adds with
 * each client. The withdrawn targets (calls/s against mcp-proxy, stdio p50 against direct) stay, informational.
 */
function computeRatios(
  comparisons: Comparison[],
  http: Map<string, { at: Map<number, Figures> }>,
  stdio: Map<string, { figures: Figures }>,
  concurrencies: number[],
): Ratio[] {
  const ratios: Ratio[] = [];
  const low = Math.min(...concurrencies);
  const high = Math.max(...concurrencies);
  for (const c of comparisons) {
    const g = http.get(c.gatehouse)?.at;
    const d = http.get(c.direct)?.at;
    const p = c.proxy ? http.get(c.proxy)?.at : undefined;
    if (!g || !d) continue;
    /** Judged against `value` at concurrency `at` only; elsewhere, and for a variant that is the direct path plus a hop, printed. */
    const judged = (n: number, at: number | undefined, bound: 'max' | 'min', value: number): Pick<Ratio, 'target' | 'note'> =>
      c.informational ? { note: 'this path is the direct one plus a Gatehouse hop' } : at === undefined || n === at ? { target: { bound, value } } : { note: `the target is at c=${at}` };
    for (const n of concurrencies) ratios.push({ variant: c.variant, name: 'p50 / direct p50', concurrency: n, value: g.get(n)!.p50Ms / d.get(n)!.p50Ms, ...judged(n, low, 'max', 0.9) });
    for (const n of concurrencies) ratios.push({ variant: c.variant, name: 'p99 / direct p99', concurrency: n, value: g.get(n)!.p99Ms / d.get(n)!.p99Ms, ...judged(n, low, 'max', 1) });
    for (const n of concurrencies) ratios.push({ variant: c.variant, name: 'calls/s / direct calls/s', concurrency: n, value: g.get(n)!.callsPerSec / d.get(n)!.callsPerSec, ...judged(n, undefined, 'min', 1) });
    if (p) {
      for (const n of concurrencies) {
        const ours = g.get(n)!.cpuUs;
        const theirs = p.get(n)!.cpuUs;
        if (ours !== undefined && theirs !== undefined) ratios.push({ variant: c.variant, name: 'CPU/call / mcp-proxy CPU/call', concurrency: n, value: ours / theirs, ...judged(n, high, 'max', 0.25) });
      }
      for (const n of concurrencies) ratios.push({ variant: c.variant, name: 'calls/s / mcp-proxy calls/s', concurrency: n, value: g.get(n)!.callsPerSec / p.get(n)!.callsPerSec, note: 'withdrawn target (issue 17): bounded by the 2 cores all processes share' });
    }
    const s = c.stdioUpstream ? http.get(c.stdioUpstream)?.at : undefined;
    if (s) {
      for (const n of concurrencies) {
        const ours = g.get(n)!.cpuUs;
        const stdioUp = s.get(n)!.cpuUs;
        if (ours === undefined || stdioUp === undefined) continue;
        ratios.push({ variant: c.variant, name: 'CPU/call - stdio-upstream CPU/call', concurrency: n, value: ours - stdioUp, unit: 'µs', ...(n === high ? { target: { bound: 'max', value: 50 } } : { note: `the target is at c=${high}` }) });
      }
    }
  }
  const bare = stdio.get('direct-stdio')?.figures;
  const wrap = stdio.get('gatehouse-wrap')?.figures;
  /** What `via` adds to `direct`'s p50: held to a limit (a target), or a floor shown with what it stands for. */
  const added = (variant: string, via: Figures | undefined, direct: Figures | undefined, judged: { limit: number } | { note: string }) => {
    if (!via || !direct) return;
    const value = (via.p50Ms - direct.p50Ms) * 1000;
    ratios.push({ variant, name: 'added p50 over direct', concurrency: 'seq', value, unit: 'µs', ...('limit' in judged ? { target: { bound: 'max', value: judged.limit } } : { note: judged.note }) });
  };
  added('stdio: gatehouse wrap, raw client', wrap, bare, { limit: 80 });
  added('stdio: gatehouse wrap, SDK 1.x client', stdio.get('gatehouse-wrap-sdk1')?.figures, stdio.get('direct-stdio-sdk1')?.figures, { limit: 150 });
  added('stdio: gatehouse wrap, SDK 2.x client', stdio.get('gatehouse-wrap-sdk2')?.figures, stdio.get('direct-stdio-sdk2')?.figures, { limit: 150 });
  added('stdio: byte-copying relay', stdio.get('null-relay')?.figures, bare, { note: 'the extra process hop alone' });
  added('stdio: JSON-parsing relay', stdio.get('json-relay')?.figures, bare, { note: 'the hop and the JSON work of any proxy that reads messages' });
  if (wrap && bare) ratios.push({ variant: 'stdio: gatehouse wrap, raw client', name: 'p50 / direct stdio p50', concurrency: 'seq', value: wrap.p50Ms / bare.p50Ms, note: 'withdrawn target (issue 17): a ratio to a 60 µs hop measures the pipes' });
  return ratios;
}

const passes = (r: Ratio): boolean => (r.target!.bound === 'max' ? r.value <= r.target!.value : r.value >= r.target!.value);

function table(title: string, rows: { label: string; at: Map<number, Figures> }[], concurrencies: number[]): string {
  const width = Math.max(...rows.map((r) => r.label.length), 'target'.length);
  const head = (c: number) => `${`c=${c}`.padEnd(6)}  p50 ms   p99 ms  calls/s    ±%`;
  const cell = (f: Figures | undefined) => (f ? `${' '.repeat(6)}${fmt(f.p50Ms, 3, 8)} ${fmt(f.p99Ms, 3, 8)} ${fmt(f.callsPerSec, 0, 8)} ${fmt(f.spread * 100, 0, 4)}%` : 'n/a');
  const lines = [title, `${'target'.padEnd(width)} | ${concurrencies.map(head).join(' | ')}`, `${'-'.repeat(width)}-+-${concurrencies.map((c) => '-'.repeat(head(c).length)).join('-+-')}`];
  for (const row of rows) lines.push(`${row.label.padEnd(width)} | ${concurrencies.map((c) => cell(row.at.get(c)).padStart(head(c).length)).join(' | ')}`);
  return lines.join('\n');
}

/** One line per (variant, ratio), its concurrencies side by side. */
function ratioLines(ratios: Ratio[]): string {
  const groups = new Map<string, Ratio[]>();
  for (const r of ratios) {
    const id = `${r.variant}\u0000${r.name}`;
    groups.set(id, [...(groups.get(id) ?? []), r]);
  }
  const variantWidth = Math.max(...ratios.map((r) => r.variant.length));
  const nameWidth = Math.max(...ratios.map((r) => r.name.length));
  return [...groups.values()]
    .map((group) => {
      const { variant, name } = group[0];
      const cells = group.map((r) => `${r.concurrency === 'seq' ? 'seq ' : `c=${r.concurrency}`.padEnd(4)} ${(r.unit ? `${r.value.toFixed(0)} µs` : r.value.toFixed(2)).padStart(6)} ${r.target ? (passes(r) ? 'PASS' : 'MISS') : 'info'}`);
      const judged = group.find((r) => r.target);
      const goal = judged ? `(target ${judged.target!.bound === 'max' ? '≤' : '≥'} ${judged.unit ? `${judged.target!.value} µs` : judged.target!.value.toFixed(2)}${group.some((r) => !r.target) ? ` at c=${judged.concurrency}` : ''})` : `(informational: ${group[0].note ?? ''})`;
      return `${variant.padEnd(variantWidth)}  ${name.padEnd(nameWidth)}  ${cells.join('   ')}   ${goal}`;
    })
    .join('\n');
}

function compact(f: Figures) {
  return {
    p50Ms: round(f.p50Ms, 3),
    p99Ms: round(f.p99Ms, 3),
    callsPerSec: Math.round(f.callsPerSec),
    spreadPct: Math.round(f.spread * 100),
    ...(f.cpuUs === undefined ? {} : { cpuUsPerCall: Math.round(f.cpuUs) }),
    ...(f.cpuTreeUs === undefined ? {} : { cpuUsPerCallWithUpstream: Math.round(f.cpuTreeUs) }),
  };
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits));
const fmt = (v: number | undefined, digits: number, width: number): string => (v === undefined ? 'n/a' : v.toFixed(digits)).padStart(width);
