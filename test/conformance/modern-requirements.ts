/**
 * The suite's 2026-07-28 requirements (@modelcontextprotocol/conformance 0.2.0-alpha.12, installed as the
 * `conformance-next` alias beside 0.1.16): which server scenarios are scored, which only run, and how a round
 * is judged. The lists come from the requirement file the package ships (frozen at the revision's release), so
 * they change only with the pin.
 *
 * The gate: the direct round passes every scored scenario; through Gatehouse, every scored scenario the direct
 * round passed passes too, except those in AWAITING_UPSTREAM_ERA (reported, not gating) and the checks named in
 * AWAITING_UPSTREAM_ERA_CHECKS (the rest of their scenario gates). The extension's unscored scenarios (tasks-*)
 * gate the Gatehouse rounds the same way (judgeExtensions).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';

import { passed, type ScenarioResult } from './suite-cli.ts';

export const MODERN_PACKAGE = 'conformance-next';
export const MODERN_REVISION = '2026-07-28';

/**
 * Scored scenarios that still fail through Gatehouse, awaiting the upstream era (issue 16): none now. Printed and
 * reported; a listed scenario that passes is reported as ready to be removed from here.
 */
export const AWAITING_UPSTREAM_ERA: readonly string[] = [];

/** Checks of otherwise gated scenarios that wait for the same work: the scenario gates on all its other checks. */
export const AWAITING_UPSTREAM_ERA_CHECKS: Readonly<Record<string, readonly string[]>> = {};

/** What awaits the upstream era: scenarios reported, not gated, and checks of otherwise gated scenarios. */
export interface Awaited {
  scenarios: readonly string[];
  checks: Readonly<Record<string, readonly string[]>>;
}

/** Passes, or fails only on checks that await the upstream era. */
function passesButAwaited(scenario: string, result: ScenarioResult | undefined, checks: Awaited['checks']): boolean {
  const awaited = checks[scenario];
  if (!awaited || !result || result.problem || result.checks.length === 0) return false;
  return result.checks.every((c) => c.status !== 'FAILURE' || awaited.includes(c.id));
}

interface RequirementFile {
  server: string[];
  not_scored: { scenario: string; leg: string; reason: string }[];
}

/** The server leg of the requirement file: the scored scenarios, and the others with why they are not scored. */
export function modernRequirements(): { scored: string[]; notScored: Map<string, string> } {
  const pkgJson = createRequire(import.meta.url).resolve(`${MODERN_PACKAGE}/package.json`);
  const file = parse(readFileSync(join(dirname(pkgJson), 'requirements', `${MODERN_REVISION}.yaml`), 'utf8')) as RequirementFile;
  const notScored = new Map(file.not_scored.filter((e) => e.leg === 'server').map((e) => [e.scenario, e.reason]));
  return { scored: [...file.server], notScored };
}

export interface ModernRound {
  round: string;
  direct: boolean;
  results: ReadonlyMap<string, ScenarioResult>;
}

/**
 * Judges the 2026-07-28 results of every round: what fails the run, and a note per scenario (why it does not
 * gate a round). `scenarios`: the scored ones, or the ones named by --scenario (all of which gate).
 */
export function judgeModern(
  scenarios: readonly string[],
  rounds: readonly ModernRound[],
  awaited: Awaited = { scenarios: AWAITING_UPSTREAM_ERA, checks: AWAITING_UPSTREAM_ERA_CHECKS },
): { failures: string[]; notes: Map<string, string> } {
  const failures: string[] = [];
  const notes = new Map<string, string>();
  const direct = rounds.find((r) => r.direct);
  const awaiting = new Set<string>(awaited.scenarios);
  for (const { round, direct: isDirect, results } of rounds) {
    for (const scenario of scenarios) {
      const result = results.get(scenario);
      if (passed(result)) {
        if (!isDirect && awaiting.has(scenario)) notes.set(scenario, 'AWAITING_UPSTREAM_ERA, but passes: remove it from the list');
        continue;
      }
      if (!isDirect && direct && !passed(direct.results.get(scenario))) {
        notes.set(scenario, 'fails alone too: not gated through Gatehouse');
        continue;
      }
      if (!isDirect && awaiting.has(scenario)) {
        if (!notes.has(scenario)) notes.set(scenario, 'AWAITING_UPSTREAM_ERA (issue 16 items 1-2): reported, not gated');
        continue;
      }
      if (!isDirect && passesButAwaited(scenario, result, awaited.checks)) {
        notes.set(scenario, `gated but for ${awaited.checks[scenario].join(', ')} (AWAITING_UPSTREAM_ERA_CHECKS, issue 16 items 1-2)`);
        continue;
      }
      failures.push(`${round} ${MODERN_REVISION}: ${scenario}: ${!result ? 'not run' : (result.problem ?? 'failing check(s)')}`);
    }
  }
  return { failures, notes };
}

/**
 * The scenarios the requirement file runs without scoring because they test an extension (the tasks extension,
 * SEP-2663: issue 16 item 4). They gate the Gatehouse rounds all the same, as the scored ones do: what passes alone
 * passes through Gatehouse. The direct round's failures are reported, never gating (the suite does not score them).
 */
export function judgeExtensions(scenarios: readonly string[], rounds: readonly ModernRound[]): { failures: string[]; notes: Map<string, string> } {
  const judged = judgeModern(scenarios, rounds, { scenarios: [], checks: {} });
  const direct = rounds.find((r) => r.direct);
  for (const scenario of scenarios) if (direct && !passed(direct.results.get(scenario)) && !judged.notes.has(scenario)) judged.notes.set(scenario, 'fails alone: not gated');
  return { failures: judged.failures.filter((f) => !direct || !f.startsWith(`${direct.round} `)), notes: judged.notes };
}

/** The unscored scenarios that are an extension's (`reason: extension` in the requirement file). */
export const extensionScenarios = (notScored: ReadonlyMap<string, string>): string[] => [...notScored].filter(([, reason]) => reason === 'extension').map(([scenario]) => scenario);
