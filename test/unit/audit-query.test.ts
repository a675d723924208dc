import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { AuditQuery, type AuditCall, type AuditFilter } from '../../src/audit/query.ts';
import { verifyChain } from '../../src/audit/verify.ts';
import { callEvents, everyPage as everyPageOf, generatedCall, writeGeneratedLog, type GeneratedCall } from '../helpers/audit-calls.ts';
import { coded } from '../helpers/coded-errors.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';

let dir: string;
let calls: GeneratedCall[];
let query: AuditQuery;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-audit-query-'));
  calls = await writeGeneratedLog(dir, 400);
  query = new AuditQuery(new FileAuditStore(dir));
});

/** Every page of a query, following `next`, as one list. */
const everyPage = (filter: AuditFilter, limit: number): Promise<AuditCall[]> => everyPageOf(query, filter, limit);

const expected = (keep: (c: GeneratedCall) => boolean) =>
  calls
    .filter(keep)
    .reverse()
    .map((c) => c.jobId);

describe('AuditQuery over a file chain', () => {
  it('the generated chain verifies (records built as the gateway writes them)', async () => {
    expect((await verifyChain('default', new FileAuditStore(dir).read('default'))).ok).toBe(true);
  });

  it('assembles each call from its records: principal, session, tool, decision and rules, outcome, duration', async () => {
    const { calls: page } = await query.calls('default', {}, { limit: 400 });
    expect(page).toHaveLength(400);
    for (const call of page) {
      const made = calls.find((c) => c.jobId === call.jobId)!;
      expect(call).toMatchObject({ at: made.at, session: made.session, principal: made.principal, tool: made.tool, decision: made.decision, ruleIds: [`rule-${made.decision}`], outcome: made.outcome });
      if (made.outcome === 'pending') expect(call.durationMs).toBeUndefined();
      else expect(call.durationMs).toBe(made.outcome === 'denied' ? 1 : 5);
    }
  });

  it.each<[string, AuditFilter, (c: GeneratedCall) => boolean]>([
    ['session', { session: 's4' }, (c) => c.session === 's4'],
    ['principal', { principal: 'alice' }, (c) => c.principal === 'alice'],
    ['tool glob', { tool: 'files__*' }, (c) => c.tool.startsWith('files__')],
    ['decision', { decision: 'deny' }, (c) => c.decision === 'deny'],
    ['outcome', { outcome: 'pending' }, (c) => c.outcome === 'pending'],
    ['since and until', { since: Date.UTC(2026, 0, 1) + 1_000, until: Date.UTC(2026, 0, 1) + 2_000 }, (c) => c.at >= Date.UTC(2026, 0, 1) + 1_000 && c.at < Date.UTC(2026, 0, 1) + 2_000],
    ['all at once', { session: 's1', principal: 'agent', outcome: 'succeeded' }, (c) => c.session === 's1' && c.principal === 'agent' && c.outcome === 'succeeded'],
  ])('filters by %s, newest first, and pages through them without duplicates or gaps', async (_name, filter, keep) => {
    const want = expected(keep);
    expect(want.length).toBeGreaterThan(3);
    expect((await query.calls('default', filter, { limit: 1_000 })).calls.map((c) => c.jobId)).toEqual(want);
    for (const limit of [1, 3, 7]) expect((await everyPage(filter, limit)).map((c) => c.jobId)).toEqual(want);
  });

  it('a full page has a next even when it holds the last match (the page after is empty), so it stops early', async () => {
    const want = expected((c) => c.session === 's4');
    const full = await query.calls('default', { session: 's4' }, { limit: want.length });
    expect(full.calls).toHaveLength(want.length);
    expect(await query.calls('default', { session: 's4' }, { limit: 10, cursor: full.next! })).toEqual({ calls: [] });
    expect((await query.calls('default', { session: 's4' }, { limit: want.length + 1 })).next).toBeUndefined();
  });

  it('a later page is unchanged by calls appended after the first (they come first on a fresh query)', async () => {
    const other = mkdtempSync(join(tmpdir(), 'gh-audit-query-'));
    await writeGeneratedLog(other, 30);
    const q = new AuditQuery(new FileAuditStore(other));
    const first = await q.calls('default', {}, { limit: 10 });
    // Another 30 calls, at later times, on the same chain.
    const store = new FileAuditStore(other);
    const head = await store.head('default');
    const later = Array.from({ length: 30 }, (_, i) => generatedCall(1_000 + i, Date.UTC(2026, 0, 1)));
    await store.append('default', head, chainEvents(head, later.flatMap((c) => callEvents(c))));
    await store.close();
    const second = await q.calls('default', {}, { limit: 100, cursor: first.next! });
    expect([...first.calls, ...second.calls].map((c) => c.seq)).toEqual([...new Set([...first.calls, ...second.calls].map((c) => c.seq))]);
    expect(first.calls.length + second.calls.length).toBe(30);
    expect((await q.calls('default', {}, { limit: 1_000 })).calls.slice(0, 30).map((c) => c.jobId)).toEqual(later.map((c) => c.jobId).reverse());
  });

  it('returns one job with all its records, hashes included, oldest first', async () => {
    const made = calls.find((c) => c.decision === 'require_approval' && c.outcome === 'succeeded')!;
    const job = await query.job('default', made.jobId);
    expect(job).toMatchObject({ jobId: made.jobId, outcome: 'succeeded', decision: 'require_approval' });
    expect(job!.records.map((r) => r.type)).toEqual(['job.submitted', 'job.decided', 'job.approval_required', 'job.dispatched', 'job.succeeded']);
    for (const record of job!.records) expect(record.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await query.job('default', '01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeUndefined();
    expect(await query.job('other-tenant', made.jobId)).toBeUndefined();
  });

  it('refuses a forged cursor or a limit out of range with GH_ERR_INVALID_REQUEST', async () => {
    await expect(query.calls('default', {}, { limit: 5, cursor: 'x1' })).rejects.toThrow(coded('GH_ERR_INVALID_REQUEST'));
    await expect(query.calls('default', {}, { limit: 0 })).rejects.toThrow(coded('GH_ERR_INVALID_REQUEST'));
    await expect(query.calls('default', {}, { limit: 1_001 })).rejects.toThrow(coded('GH_ERR_INVALID_REQUEST'));
  });
});
