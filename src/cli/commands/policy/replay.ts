import { parseDuration } from '../../../config/duration.ts';
import type { AuditRecord } from '../../../protocol/audit-record.ts';
import { Kernel } from '../../../kernel/kernel.ts';
import { loadPolicyFiles } from '../../../kernel/bundle.ts';
import { replayDecisions, replayOutcome, type ReplayGroup, type ReplayReport } from '../../../kernel/authoring/replay.ts';
import type { VerdictChangeSummary } from '../../../kernel/authoring/verdict-changes.ts';
import type { AuditStore } from '../../../ports.ts';
import { openAuditState } from '../../../runtime/state.ts';
import { flag, parseArgs, usage } from '../../args.ts';
import { stateConfig, STATE_FLAGS } from '../../state.ts';
import { takePolicyPaths } from './sources.ts';

export const REPLAY_HELP = `  gatehouse policy replay --policy DRAFT... [--since T] [--tenant T] [--config FILE | --data-dir DIR] [--json]
    Re-decides the recorded decisions (job.decided audit records) under a draft bundle, as the live gateway decides
    (the constraint check on the arguments included, on the tool facts recorded with each decision), and reports
    how many would change, grouped by old effect -> new effect (a constraint's refusal shows as deny with its code)
    and the draft's deciding rules, with example jobs and tools.
    Decisions whose effect stays but whose matching rules differ are counted apart. Decisions recorded without
    their input (by gateways older than this feature) are skipped as not replayable. Read-only: safe while the
    gateway runs. Recorded arguments are redacted, so a condition that reads a redacted field may decide
    differently than it did; the report says when that applies. Exit 0 whatever changes.
    --policy FILE|DIR   the draft bundle (repeatable)
    --since T           only decisions since T: an ISO date/time, or a duration ago such as 30m, 24h or 7d
    --tenant T          one tenant's chain (default: all)
    --config FILE / --data-dir DIR   where the audit trail is (as for audit)
    --json              print the report as JSON`;

export async function runReplay(argv: string[]): Promise<number> {
  const taken = takePolicyPaths(argv);
  const args = parseArgs(taken.argv, { values: [...STATE_FLAGS.values, 'since', 'tenant'], booleans: ['json'] });
  if (args.positionals.length > 0) throw usage(`unexpected argument "${args.positionals[0]}"`);
  if (taken.paths.length === 0) throw usage('missing --policy DRAFT: the bundle to replay under');
  const since = flag(args, 'since') === undefined ? undefined : parseSince(flag(args, 'since')!, Date.now());
  const draft = new Kernel(loadPolicyFiles(taken.paths));
  const store = await openAuditState(stateConfig(args));
  try {
    const tenants = flag(args, 'tenant') ? [flag(args, 'tenant')!] : await store.tenants();
    const report = await replayDecisions(allRecords(store, tenants), draft, { since });
    console.log(args.flags.json ? JSON.stringify({ since, tenants, ...report }, null, 2) : formatReport(report, since));
    return 0;
  } finally {
    await store.close();
  }
}

/** `--since`: an ISO date/time, or a duration meaning that long before `now`. */
export function parseSince(text: string, now: number): number {
  const ago = parseDuration(text);
  if (ago !== undefined) return now - ago;
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw usage(`--since needs an ISO date/time (2025-06-01, 2025-06-01T09:00:00Z) or a duration (30m, 24h, 7d), got "${text}"`);
  return at;
}

export async function* allRecords(store: AuditStore, tenants: readonly string[]): AsyncIterable<AuditRecord> {
  for (const tenant of tenants) yield* store.read(tenant);
}

function formatReport(report: ReplayReport, since: number | undefined): string {
  const window = since === undefined ? '' : ` since ${new Date(since).toISOString()}`;
  const lines = [
    `${report.decisions} recorded decisions${window}; replayed ${report.replayed} under ${report.policySnapshot}`,
    `  changed effect               ${report.changed}`,
    `  same effect, different rules ${report.sameEffectDifferentRules}`,
    `  unchanged                    ${report.unchanged}`,
    `  not replayable (no input)    ${report.skipped}`,
  ];
  lines.push(...changeLines(report));
  if (report.redacted > 0) {
    lines.push(
      '',
      `note: ${report.redacted} replayed decision${report.redacted === 1 ? ' has' : 's have'} redacted arguments ("[REDACTED]"). A condition that reads`,
      'a redacted field saw the marker, not the real value, so those results may differ from what the draft would decide live.',
    );
  }
  return lines.join('\n');
}

/** The changed verdicts of a report, grouped; `whose` names the other policy. */
export function changeLines(report: VerdictChangeSummary, whose = 'draft', indent = ''): string[] {
  const lines: string[] = [];
  const grouped = (g: ReplayGroup, title: string) => groupLines(g, title, whose).map((line) => indent + line);
  if (report.groups.length > 0) lines.push('', `${indent}changed effect:`, ...report.groups.flatMap((g) => grouped(g, `${replayOutcome(g.from, g.fromCode)} -> ${replayOutcome(g.to, g.toCode)}`)));
  if (report.ruleGroups.length > 0) lines.push('', `${indent}same effect, different rules:`, ...report.ruleGroups.flatMap((g) => grouped(g, g.to)));
  return lines;
}

/** One group of changed verdicts and its examples; `whose` names the other policy (draft, shadow). */
function groupLines(group: ReplayGroup, title: string, whose = 'draft'): string[] {
  const refused = group.toCode !== undefined && group.toCode !== 'GH_ERR_POLICY_DENIED';
  const rules = refused
    ? `the constraint${group.ruleIds.length > 0 ? ` of ${whose} rule ${group.ruleIds.join(', ')}` : 's on the arguments'}`
    : group.ruleIds.length > 0
      ? `${whose} rules ${group.ruleIds.join(', ')}`
      : `the ${whose} default (no rule matched)`;
  return [
    `  ${title}: ${group.count}, by ${rules}`,
    ...group.examples.map((e) => `    job ${e.jobId ?? '(none)'}  ${e.tool}  tenant ${e.tenant}  ${new Date(e.at).toISOString()}`),
  ];
}
