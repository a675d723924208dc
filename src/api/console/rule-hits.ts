import type { AuditStore } from '../../ports.ts';

/** The windows the Policy page counts rule hits over. */
export const HIT_WINDOWS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const;
export type HitWindow = keyof typeof HIT_WINDOWS;

/** How far before a newer record an older one may be stamped (several writers, batching): the scan reads on that far. */
export const CLOCK_SLACK_MS = 60_000;
/** At most this many records are read for one count, so a busy week costs a bounded scan; the page says when it stopped. */
export const MAX_SCANNED = 200_000;

export interface RuleHits {
  /** Decisions (`job.decided` records) in the window. */
  decisions: number;
  /** Decisions each rule matched. */
  hits: Map<string, number>;
  /** Decisions no rule matched (the default applied). */
  byDefault: number;
  /** False when the scan stopped at MAX_SCANNED before the window's start: the counts cover only its newest part. */
  complete: boolean;
  /** The oldest decision counted (ms since the epoch). */
  oldest?: number;
}

/**
 * Counts each rule's hits in one tenant's `job.decided` records since `since`, reading the trail newest first and
 * stopping past the window (or at `maxScanned` records).
 */
export async function countRuleHits(records: Pick<AuditStore, 'readBack'>, tenant: string, since: number, maxScanned = MAX_SCANNED): Promise<RuleHits> {
  const counts: RuleHits = { decisions: 0, hits: new Map(), byDefault: 0, complete: true };
  let scanned = 0;
  for await (const record of records.readBack(tenant)) {
    if (record.at < since - CLOCK_SLACK_MS) break;
    if (++scanned > maxScanned) {
      counts.complete = false;
      break;
    }
    if (record.type !== 'job.decided' || record.at < since) continue;
    counts.decisions++;
    counts.oldest = record.at;
    const ids = Array.isArray(record.data.ruleIds) ? record.data.ruleIds.filter((id): id is string => typeof id === 'string') : [];
    if (ids.length === 0) counts.byDefault++;
    for (const id of ids) counts.hits.set(id, (counts.hits.get(id) ?? 0) + 1);
  }
  return counts;
}
