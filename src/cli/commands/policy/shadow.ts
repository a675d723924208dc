import { shadowReport, type ShadowPolicyReport, type ShadowReport } from '../../../kernel/authoring/shadow-report.ts';
import { openAuditState } from '../../../runtime/state.ts';
import { flag, parseArgs, usage } from '../../args.ts';
import { stateConfig, STATE_FLAGS } from '../../state.ts';
import { allRecords, changeLines, parseSince } from './replay.ts';

export const SHADOW_HELP = `  gatehouse policy shadow [--since T] [--tenant T] [--config FILE | --data-dir DIR] [--json]
    Reports where the shadow policies decided otherwise than the enforced one: the rules written enforce: false
    (shadow "rules": the bundle as it would decide with them enforced) and the config's shadowPolicies draft
    (shadow "draft"). Both are decided beside every tool call and recorded in its job.decided record, so this reads
    the audit trail only: grouped by enforced effect -> shadow effect and the shadow's matching rules, with example
    jobs and tools. Read-only: safe while the gateway runs. Exit 0 whatever differs.
    --since T           only decisions since T: an ISO date/time, or a duration ago such as 30m, 24h or 7d
    --tenant T          one tenant's chain (default: all)
    --config FILE / --data-dir DIR   where the audit trail is (as for audit)
    --json              print the report as JSON`;

export async function runShadow(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'since', 'tenant'], booleans: ['json'] });
  if (args.positionals.length > 0) throw usage(`unexpected argument "${args.positionals[0]}"`);
  const since = flag(args, 'since') === undefined ? undefined : parseSince(flag(args, 'since')!, Date.now());
  const store = await openAuditState(stateConfig(args));
  try {
    const tenants = flag(args, 'tenant') ? [flag(args, 'tenant')!] : await store.tenants();
    const report = await shadowReport(allRecords(store, tenants), { since });
    console.log(args.flags.json ? JSON.stringify({ since, tenants, ...report }, null, 2) : formatReport(report, since));
    return 0;
  } finally {
    await store.close();
  }
}

const NAMES = { rules: 'the rules written enforce: false', draft: 'the shadowPolicies draft' } as const;

function formatReport(report: ShadowReport, since: number | undefined): string {
  const window = since === undefined ? '' : ` since ${new Date(since).toISOString()}`;
  const lines = [`${report.decisions} recorded decisions${window}; ${report.shadowed} decided with a shadow beside`];
  if (report.policies.length === 0) lines.push('no shadow decisions recorded: set shadowPolicies in the config, or write enforce: false on a rule');
  for (const policy of report.policies) lines.push('', ...policyLines(policy));
  return lines.join('\n');
}

function policyLines(p: ShadowPolicyReport): string[] {
  return [
    `shadow ${p.policy} (${NAMES[p.policy]}; ${p.snapshots.join(', ')}): decided beside ${p.decided}`,
    `  differs in effect            ${p.changed}`,
    `  same effect, different rules ${p.sameEffectDifferentRules}`,
    `  agrees                       ${p.unchanged}`,
    ...(p.errors > 0 ? [`  could not decide             ${p.errors}`] : []),
    ...changeLines(p, 'shadow', '  '),
  ];
}
