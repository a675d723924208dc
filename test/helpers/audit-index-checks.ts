import { expect } from 'vitest';
import { AuditQuery } from '../../src/audit/query.ts';
import type { AuditIndex } from '../../src/ports.ts';
import { everyPage } from './audit-calls.ts';

/** A query that may only use a store's index: a scan of the chain throws. */
export function indexOnly(store: AuditIndex): AuditQuery {
  return new AuditQuery({
    readBack: () => {
      throw new Error('scanned the chain');
    },
    sessionCalls: (tenant, session) => store.sessionCalls(tenant, session),
    jobRecords: (tenant, jobIds) => store.jobRecords(tenant, jobIds),
  });
}

/** Each session's calls (all, and the pending ones) page by page, and each job, as `query` answers them, equal to `scan`'s. */
export async function expectSameCalls(query: AuditQuery, scan: AuditQuery, sessions: readonly string[], jobIds: readonly string[]): Promise<void> {
  for (const session of sessions) {
    for (const filter of [{ session }, { session, outcome: 'pending' as const }]) {
      const want = await everyPage(scan, filter, 1_000);
      expect(want.length).toBeGreaterThan(0);
      for (const limit of [1_000, 7]) expect(await everyPage(query, filter, limit)).toEqual(want);
    }
  }
  expect(await query.calls('default', { session: 'nobody' }, { limit: 10 })).toEqual({ calls: [] });
  for (const jobId of jobIds) expect(await query.job('default', jobId)).toEqual(await scan.job('default', jobId));
  expect(await query.job('default', '01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeUndefined();
}
