import { mkdtempSync, readFileSync, renameSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { withFileLock } from '../../adapters/file/file-lock.ts';

/** Whether any two of 20 concurrent bodies under `lock`, each holding it `holdMs`, ever overlapped. */
async function overlapsUnder(lock: string, holdMs: number): Promise<boolean> {
  let inside = 0;
  let overlapped = false;
  await Promise.all(
    Array.from({ length: 20 }, () =>
      withFileLock(lock, async () => {
        inside++;
        if (inside > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, holdMs));
        inside--;
      }),
    ),
  );
  return overlapped;
}

describe('file lock', () => {
  it('never lets two bodies overlap', async () => {
    const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
    expect(await overlapsUnder(lock, 2)).toBe(false);
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock left by a process that died', async () => {
    const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
    writeFileSync(lock, '2147483646 deadbeef'); // no such pid
    expect(await withFileLock(lock, async () => 'got it')).toBe('got it');
    expect(existsSync(lock)).toBe(false);
  });

  it('removes the lock at the end only while the path still names its own: a lock taken over in between is left to its new holder', async () => {
    const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
    await withFileLock(lock, async () => {
      // What a process that judged ours stale does: moves it aside, removes it, and takes the lock itself.
      renameSync(lock, `${lock}.aside`);
      unlinkSync(`${lock}.aside`);
      writeFileSync(lock, '2147483646 other-holder');
    });
    expect(readFileSync(lock, 'utf8')).toBe('2147483646 other-holder');
  });

  it('removes its own lock when a takeover that moved it aside put it back (it was not the stale one)', async () => {
    const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
    await withFileLock(lock, async () => {
      renameSync(lock, `${lock}.aside`);
      renameSync(`${lock}.aside`, lock);
    });
    expect(existsSync(lock)).toBe(false);
  });

  // With the clock stopped, no lock can age into staleness: only a takeover by owner can end these waits, and a
  // wait for age runs into the test's timeout.
  const stopTheClock = () => vi.useFakeTimers({ toFake: ['Date'] });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes over at once a lock naming our own pid that no call of ours holds (a restarted container reuses pids)', { timeout: 5_000 }, async () => {
    stopTheClock();
    const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
    writeFileSync(lock, `${process.pid} 0123456789abcdef`);
    expect(await withFileLock(lock, async () => 'got it')).toBe('got it');
  });

  it('lets many calls of one process take over a dead process\'s lock without two bodies overlapping', { timeout: 5_000 }, async () => {
    stopTheClock();
    for (let round = 0; round < 5; round++) {
      const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
      writeFileSync(lock, '2147483646 deadbeef');
      expect(await overlapsUnder(lock, 1)).toBe(false);
      expect(existsSync(lock)).toBe(false);
    }
  });
});
