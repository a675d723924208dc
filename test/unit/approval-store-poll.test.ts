// The file approval store's safety-net poll (adapters/file/approval-store.ts): it runs every second on the
// gateway's event loop, so it must not stat and read every approval ever made on each tick. A finished approval
// (denied, expired, cancelled, consumed) never becomes live again, so the poll reads it once, and from `live/`, the
// markers of the approvals that can still change, reads only those. statSync is wrapped only to count the reads; the
// files are real.
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

/** Lets a tick's file work finish (the poll's awaits run on real I/O), up to a bound: the assertion after it says what failed. */
async function settles(done: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !done(); i++) await new Promise<void>((resolve) => setTimeout(resolve, 5));
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

  it('reads only the live approvals each tick, however many settled ones the data dir holds, and keeps nothing of those', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-poll-'));
    const store = new FileApprovalStore(dir);
    const settled = Array.from({ length: 300 }, (_, i) => `apr_settled_${i}`);
    for (const id of settled) await store.create(sampleApproval(id, { state: 'denied' }));
    // Live once, settled since: the poll delivered them live, and must forget them once they settle.
    for (const id of ['apr_a', 'apr_b']) await store.create(sampleApproval(id));
    await store.create(sampleApproval('apr_live'));
    const unwatch = store.watch(() => undefined);
    const live = join(dir, 'approvals', 'apr_live.json');
    // The first tick marks what an older version left unmarked (here: nothing), once for the data dir.
    await tick(live);
    await tick(live);
    // fs.watch may deliver the creates above during these ticks (and read the live file as a tick does).
    await settles(() => store.polledApprovals === 3);
    expect(store.polledApprovals).toBe(3);
    for (const id of ['apr_a', 'apr_b']) await store.update(id, (r) => ({ ...r, state: 'denied' }));
    await tick(live);
    await tick(live);
    const settledReads = () => settled.reduce((n, id) => n + readsOf(join(dir, 'approvals', `${id}.json`)), 0);
    const before = settledReads();
    await tick(live);
    await tick(live);
    expect(settledReads()).toBe(before);
    await settles(() => store.polledApprovals === 1);
    expect(store.polledApprovals).toBe(1);
    expect(store.watchedApprovals).toBe(1);
    unwatch();
    await store.close();
  });

  it('marks the live approvals of a data dir from before the markers once, and drops a marker a crash left on a settled one', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-poll-'));
    const writer = new FileApprovalStore(dir);
    await writer.create(sampleApproval('apr_old_live'));
    await writer.create(sampleApproval('apr_old_done', { state: 'expired' }));
    await writer.create(sampleApproval('apr_crashed'));
    await writer.close();
    const liveDir = join(dir, 'approvals', 'live');
    // As an older version left it: no markers at all.
    fs.rmSync(liveDir, { recursive: true });
    const store = new FileApprovalStore(dir);
    const unwatch = store.watch(() => undefined);
    await tick(join(dir, 'approvals', 'apr_old_live.json'));
    await settles(() => fs.existsSync(join(liveDir, '.complete')));
    expect(fs.readdirSync(liveDir).sort()).toEqual(['.complete', 'apr_crashed', 'apr_old_live']);
    // Settled by a process that died before it removed the marker.
    const record = JSON.parse(fs.readFileSync(join(dir, 'approvals', 'apr_crashed.json'), 'utf8'));
    fs.writeFileSync(join(dir, 'approvals', 'apr_crashed.json'), JSON.stringify({ ...record, state: 'denied' }));
    await tick(join(dir, 'approvals', 'apr_old_live.json'));
    await tick(join(dir, 'approvals', 'apr_old_live.json'));
    await settles(() => !fs.existsSync(join(liveDir, 'apr_crashed')));
    expect(fs.readdirSync(liveDir).sort()).toEqual(['.complete', 'apr_old_live']);
    unwatch();
    await store.close();
  });
});
