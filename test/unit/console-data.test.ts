// What the console's Policy and Overview pages read of the audit trail, on a chain in memory: the bounded scans
// (they stop past the window, and at their cap, saying so), the time split of a call, and the chain status that
// verifies in the background and never twice at once.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { countRuleHits } from '../../src/api/console/rule-hits.ts';
import { callCharts, percentile } from '../../src/api/console/overview-data.ts';
import { ChainStatus } from '../../src/audit/chain-status.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { writeGeneratedLog } from '../helpers/audit-calls.ts';

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);

/** A trail read newest first that counts what was read. */
function trail(records: Omit<AuditRecord, 'seq' | 'tenant' | 'prev' | 'hash' | 'actor'>[]) {
  const read = { count: 0 };
  const full = records.map((r, i) => ({ seq: i + 1, tenant: 'default', actor: 'x', prev: '', hash: '', ...r }));
  return {
    read,
    readBack: async function* () {
      for (let i = full.length - 1; i >= 0; i--) {
        read.count++;
        yield full[i];
      }
    },
  };
}

const decided = (at: number, ruleIds: string[], jobId = `j${at}`) => ({ at, type: 'job.decided', jobId, data: { effect: 'allow', ruleIds } });

describe('rule hits', () => {
  it('counts the window only, and stops reading a minute past its start', async () => {
    const old = Array.from({ length: 1_000 }, (_, i) => decided(NOW - 3 * 3_600_000 + i, ['a']));
    const t = trail([...old, decided(NOW - 1_000, ['a', 'b']), decided(NOW - 500, []), decided(NOW - 100, ['b'])]);
    const hits = await countRuleHits(t, 'default', NOW - 3_600_000);
    expect({ decisions: hits.decisions, a: hits.hits.get('a'), b: hits.hits.get('b'), byDefault: hits.byDefault, complete: hits.complete }).toEqual({ decisions: 3, a: 1, b: 2, byDefault: 1, complete: true });
    expect(t.read.count).toBe(4); // the three, and the first record past the window
  });

  it('stops at its cap and says the count is partial', async () => {
    const t = trail(Array.from({ length: 100 }, (_, i) => decided(NOW - 100 + i, ['a'])));
    const hits = await countRuleHits(t, 'default', NOW - 3_600_000, 10);
    expect({ decisions: hits.decisions, complete: hits.complete }).toEqual({ decisions: 10, complete: false });
    expect(t.read.count).toBe(11);
  });
});

describe('the overview charts', () => {
  it("buckets calls by minute and decision, and splits a call's time into Gatehouse's, the approval's and the upstream's", async () => {
    const at = NOW - 90_000;
    const t = trail([
      { at, type: 'job.submitted', jobId: 'j1', data: {} },
      { at: at + 2, type: 'job.decided', jobId: 'j1', data: { effect: 'require_approval', ruleIds: ['r'] } },
      { at: at + 3, type: 'job.approval_required', jobId: 'j1', data: {} },
      { at: at + 5_003, type: 'job.scheduled', jobId: 'j1', data: {} },
      { at: at + 5_004, type: 'job.dispatched', jobId: 'j1', data: {} },
      { at: at + 5_104, type: 'job.succeeded', jobId: 'j1', data: {} },
      { at: NOW - 10, type: 'job.submitted', jobId: 'j2', data: {} },
      { at: NOW - 9, type: 'job.decided', jobId: 'j2', data: { effect: 'deny', ruleIds: [] } },
      { at: NOW - 8, type: 'job.denied', jobId: 'j2', data: {} },
    ]);
    const charts = await callCharts(t, 'default', NOW + 30_000); // half a minute into the last bucket
    expect(charts.minutes).toHaveLength(60);
    expect(charts.calls).toBe(2);
    expect(charts.byDecision.require_approval.reduce((a, b) => a + b)).toBe(1);
    expect(charts.byDecision.deny[58]).toBe(1); // the minute before NOW's
    const minute = charts.byDecision.require_approval.indexOf(1);
    expect(charts.duration.upstreamP50[minute]).toBe(100);
    expect(charts.duration.gatehouseP50[minute]).toBe(4); // 5,104 in all, less 5,000 waiting and 100 upstream
    expect(charts.duration.gatehouseP50[58]).toBe(2);
    expect(charts.duration.upstreamP50[58]).toBeNull(); // a denied call never reached the upstream
  });

  it('reads no more than its cap', async () => {
    const t = trail(Array.from({ length: 50 }, (_, i) => ({ at: NOW - 50 + i, type: 'job.submitted', jobId: `j${i}`, data: {} })));
    const charts = await callCharts(t, 'default', NOW, 20);
    expect({ calls: charts.calls, complete: charts.complete, read: t.read.count }).toEqual({ calls: 20, complete: false, read: 21 });
  });

  it('takes nearest-rank percentiles', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 95)).toBe(95);
    expect(percentile([], 50)).toBeNull();
  });
});

describe('the chain status', () => {
  it('verifies in the background, keeps the result, and starts again only once it is stale', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-chain-status-'));
    await writeGeneratedLog(dir, 20);
    const store = new FileAuditStore(dir);
    let now = NOW;
    let reads = 0;
    const counting = { ...store, read: (tenant: string) => (reads++, store.read(tenant)), recordedHead: (t: string) => store.recordedHead(t), tornTail: (t: string) => store.tornTail(t) };
    const status = new ChainStatus(counting, async () => undefined, () => now, 60_000);
    expect(status.of('default')).toBeUndefined(); // a page never waits for it
    expect(status.of('default')).toBeUndefined(); // and one run at a time
    const first = await status.settled('default');
    expect(first?.report).toMatchObject({ ok: true, records: (await store.head('default')).seq });
    expect(reads).toBe(1);
    now += 30_000;
    expect(status.of('default')).toBe(first);
    await status.settled('default');
    expect(reads).toBe(1);
    now += 30_000;
    expect(status.of('default')).toBe(first); // stale: shown while the next runs
    await status.settled('default');
    expect(reads).toBe(2);
    await store.close();
  });
});
