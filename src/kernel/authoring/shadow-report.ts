import type { AuditRecord } from '../../protocol/audit-record.ts';
import type { ShadowName } from '../shadow.ts';
import { recordedDecision, recordedShadows, type ReplayOptions } from './replay.ts';
import { VerdictChanges, type VerdictChangeSummary } from './verdict-changes.ts';

/** How one shadow's verdicts compare with the enforced ones over a window. */
export interface ShadowPolicyReport extends VerdictChangeSummary {
  policy: ShadowName;
  /** The shadow's snapshots seen in the window (a reloaded draft has several), oldest first. */
  snapshots: string[];
  /** Decisions it was decided beside. */
  decided: number;
  /** Decisions it could not decide (recorded with an `error`); never counted as changes. */
  errors: number;
}

export interface ShadowReport {
  /** `job.decided` records in the window. */
  decisions: number;
  /** Of them, decided with at least one shadow beside. */
  shadowed: number;
  policies: ShadowPolicyReport[];
}

/**
 * Where the shadows (`enforce: false` rules, `shadowPolicies`) decided otherwise than the enforced policy, from the
 * verdicts recorded beside each decision: `policy replay` run live, so every call is compared on its real,
 * unredacted arguments at the moment it was made. Grouped by enforced -> shadow effect and the shadow's deciding rules.
 */
export async function shadowReport(records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>, options: ReplayOptions = {}): Promise<ShadowReport> {
  let decisions = 0;
  let shadowed = 0;
  const byPolicy = new Map<ShadowName, { changes: VerdictChanges; snapshots: Set<string>; decided: number; errors: number }>();
  for await (const record of records) {
    if (record.type !== 'job.decided' || (options.since !== undefined && record.at < options.since)) continue;
    decisions++;
    const enforced = recordedDecision(record);
    const shadows = recordedShadows(record);
    if (!enforced || shadows.length === 0) continue;
    shadowed++;
    const tool = String((record.data.input as { tool?: unknown } | undefined)?.tool ?? '?');
    for (const shadow of shadows) {
      let tally = byPolicy.get(shadow.policy);
      if (!tally) byPolicy.set(shadow.policy, (tally = { changes: new VerdictChanges(), snapshots: new Set(), decided: 0, errors: 0 }));
      tally.decided++;
      tally.snapshots.add(shadow.snapshot);
      if (shadow.error !== undefined) {
        tally.errors++;
        continue;
      }
      tally.changes.add(enforced, shadow, shadow.deciding ?? shadow.ruleIds, { jobId: record.jobId, tenant: record.tenant, tool, at: record.at });
    }
  }
  const policies = [...byPolicy].map(([policy, t]) => ({ policy, snapshots: [...t.snapshots], decided: t.decided, errors: t.errors, ...t.changes.summary() }));
  return { decisions, shadowed, policies: policies.sort((a, b) => a.policy.localeCompare(b.policy)) };
}
