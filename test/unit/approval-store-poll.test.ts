// The file approval store's safety-net poll (adapters/file/approval-store.ts): it runs every second on the
// gateway's event loop, so it must not stat and read every approval ever made on each tick. A finished approval
// (denied, expired, cancelled, consumed) never becomes live again, so the poll reads it once. statSync is wrapped
// only to count the reads; the files are real.
import { mkdtempSync } from 'node:fs';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { sampleApproval } from '../contract/approval-store.contract.ts';

vi.mock('node:fs', async (original) => {
  const real = await original<typeof import('node:fs')>();
  return { ...real, statSync: vi.fn(real.statSync) };
});

const readsOf = (path: string) => vi.mocked(fs.statSync).mock.calls.filter(([p]) => p === path).length;

/**
 * One tick of the poll, done: it reads the live approval each time (after its one readdir, the rest of a tick runs in
 * microtasks), so the tick has run once that read is seen.
 */
async function tick(live: string): Promise<void> {
  const before = readsOf(live);
  await vi.advanceTimersByTimeAsync(1_000);
  for (let i = 0; i < 1_000 && readsOf(live) === before; i++) await new Promise<void>((resolve) => setTimeout(resolve, 5));
  await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('FileApprovalStore, the safety-net poll', () => {
  afterEach(() => vi.useRealTimers());

  it('reads a finished approval once, not on every tick, and still delivers a live one changed elsewhere', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-poll-'));
    const store = new FileApprovalStore(dir);
    await store.create(sampleApproval('apr_done', { state: 'denied' }));
    await store.create(sampleApproval('apr_live'));
    const seen: string[] = [];
    const unwatch = store.watch((record) => seen.push(`${record.id}:${record.state}`));
    const done = join(dir, 'approvals', 'apr_done.json');
    const live = join(dir, 'approvals', 'apr_live.json');
    // The first ticks read both; fs.watch may still deliver the writes above.
    await tick(live);
    await tick(live);
    const doneReads = readsOf(done);
    await tick(live);
    await tick(live);
    expect(readsOf(done)).toBe(doneReads);
    // A live approval approved by another process is still delivered.
    const other = new FileApprovalStore(dir);
    await other.update('apr_live', (r) => ({ ...r, state: 'approved' }));
    await tick(live);
    expect(seen).toContain('apr_live:approved');
    unwatch();
    await store.close();
    await other.close();
  });
});
