// Listing the pending or approved approvals of the file store (adapters/file/approval-store.ts): the gateway's
// expiry sweep asks for both every 30 s, on its event loop, so they must come from the live markers, not from a
// stat, read and parse of every approval the data dir ever held. statSync is wrapped only to count the reads; the
// files are real.
import { mkdtempSync } from 'node:fs';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { sampleApproval } from '../contract/approval-store.contract.ts';

vi.mock('node:fs', async (original) => {
  const real = await original<typeof import('node:fs')>();
  return { ...real, statSync: vi.fn(real.statSync) };
});

const readsOf = (paths: readonly string[]) => vi.mocked(fs.statSync).mock.calls.filter(([p]) => paths.includes(String(p))).length;

describe('FileApprovalStore, listing the live states', () => {
  it('lists the pending and the approved ones without reading a settled approval', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-live-'));
    const writer = new FileApprovalStore(dir);
    const settled = Array.from({ length: 200 }, (_, i) => `apr_settled_${i}`);
    for (const [i, id] of settled.entries()) await writer.create(sampleApproval(id, { state: (['denied', 'expired', 'cancelled', 'consumed'] as const)[i % 4] }));
    await writer.create(sampleApproval('apr_pending'));
    await writer.create(sampleApproval('apr_approved', { state: 'approved' }));
    // Pending once, denied since.
    await writer.create(sampleApproval('apr_was_pending'));
    await writer.update('apr_was_pending', (r) => ({ ...r, state: 'denied' }));
    await writer.close();

    // A fresh store, as after a restart (or with more settled approvals than its cache holds).
    const store = new FileApprovalStore(dir);
    const settledFiles = [...settled, 'apr_was_pending'].map((id) => join(dir, 'approvals', `${id}.json`));
    // The first look at the markers checks, once per data dir, that an older version left no live one unmarked.
    await store.list({ state: 'pending' });
    const before = readsOf(settledFiles);
    expect((await store.list({ state: 'pending' })).map((r) => r.id)).toEqual(['apr_pending']);
    expect((await store.list({ state: 'approved' })).map((r) => r.id)).toEqual(['apr_approved']);
    expect(readsOf(settledFiles)).toBe(before);
    // The other states still come from every record.
    expect((await store.list({ state: 'denied' })).map((r) => r.id)).toContain('apr_was_pending');
    await store.close();
  });

  it('finds the live approvals of a data dir from before the markers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-live-'));
    const writer = new FileApprovalStore(dir);
    await writer.create(sampleApproval('apr_old_pending'));
    await writer.create(sampleApproval('apr_old_approved', { state: 'approved' }));
    await writer.create(sampleApproval('apr_old_done', { state: 'expired' }));
    await writer.close();
    // As an older version left it: no markers at all.
    fs.rmSync(join(dir, 'approvals', 'live'), { recursive: true });

    const store = new FileApprovalStore(dir);
    expect((await store.list({ state: 'pending' })).map((r) => r.id)).toEqual(['apr_old_pending']);
    expect((await store.list({ state: 'approved' })).map((r) => r.id)).toEqual(['apr_old_approved']);
    await store.close();
  });
});
