import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { followsTurn, withFileLock } from '../../adapters/file/file-lock.ts';
import { ROOT } from '../helpers/gateway-harness.ts';

const TAKER = join(ROOT, 'test/fixtures/lock-taker.ts');

/** test/fixtures/lock-taker.ts in its own process: once it has ended, its exit code and whether it got the lock. */
function taker(lock: string, inside: string, keepMs?: number): { exited: Promise<{ code: number | null; got: boolean; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', TAKER, lock, inside, ...(keepMs ? [String(keepMs)] : [])], { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return { exited: new Promise((resolve) => child.on('exit', (code) => resolve({ code, got: stdout.includes('got'), stderr }))) };
}

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

  describe('kept between turns (keepMs)', () => {
    it('outlives its turn for the next one, then is let go once idle', async () => {
      const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
      await withFileLock(lock, async () => undefined, { keepMs: 30 });
      const { ino } = statSync(lock);
      await withFileLock(lock, async () => undefined, { keepMs: 30 });
      expect(statSync(lock).ino).toBe(ino); // the same lock file, not taken anew
      for (let i = 0; i < 100 && existsSync(lock); i++) await sleep(10);
      expect(existsSync(lock)).toBe(false);
    });

    it('numbers its turns, so an owner can tell nobody held the lock since its own last turn', async () => {
      const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
      const turn = () => withFileLock(lock, async (t) => t, { keepMs: 60_000 });
      const first = await turn();
      const second = await turn();
      expect(followsTurn(second, first)).toBe(true);
      await turn(); // another owner's turn
      const fourth = await turn();
      expect(followsTurn(fourth, second)).toBe(false);
      await withFileLock(lock, async () => undefined); // a turn that lets the lock go
      expect(followsTurn(await turn(), fourth)).toBe(false);
      await withFileLock(lock, async () => undefined);
    });

    it("does not use a kept lock again once the path names another holder's (let go late: the event loop was held up)", async () => {
      const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
      await withFileLock(lock, async () => undefined, { keepMs: 30 });
      const until = Date.now() + 100;
      while (Date.now() < until); // held up past keepMs: the timer that lets the lock go cannot run
      // What a process that judged it stale does: moves it aside and takes the lock (a live pid: not stale to us).
      renameSync(lock, `${lock}.aside`);
      unlinkSync(`${lock}.aside`);
      writeFileSync(lock, `${process.ppid} other-holder`);
      let otherHolds = true;
      setTimeout(() => {
        otherHolds = false;
        unlinkSync(lock);
      }, 50);
      let ranWhileOtherHeld: boolean | undefined;
      await withFileLock(lock, async () => void (ranWhileOtherHeld = otherHolds), { keepMs: 30 });
      expect(ranWhileOtherHeld).toBe(false);
      await withFileLock(lock, async () => undefined);
    });

    it('a turn without keepMs ends a kept lock', async () => {
      const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
      await withFileLock(lock, async () => undefined, { keepMs: 60_000 });
      expect(existsSync(lock)).toBe(true);
      await withFileLock(lock, async () => undefined);
      expect(existsSync(lock)).toBe(false);
    });

    it('lets a waiting process in while this one takes turn after turn without a pause, never two holders at once', { timeout: 20_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gh-lock-'));
      const lock = join(dir, 'x.lock');
      const inside = join(dir, 'inside');
      let turns = 0;
      // Holding first: the other process finds the lock kept.
      await withFileLock(lock, async () => undefined, { keepMs: 60_000 });
      const other = taker(lock, inside);
      let otherDone = false;
      void other.exited.then(() => (otherDone = true));
      // Turns that follow each other in microtasks only: no timer of this process runs between them.
      while (!otherDone && turns < 2_000_000) {
        await withFileLock(lock, async () => {
          closeSync(openSync(inside, 'wx'));
          unlinkSync(inside);
          turns++;
        }, { keepMs: 60_000 });
        if (turns % 1000 === 0) await sleep(1); // let the child's exit be noticed
      }
      const ended = await other.exited;
      expect(ended, ended.stderr).toMatchObject({ code: 0, got: true });
      await withFileLock(lock, async () => undefined);
    });

    it('a process that ends leaves no kept lock behind', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gh-lock-'));
      const lock = join(dir, 'x.lock');
      expect(await taker(lock, join(dir, 'inside'), 60_000).exited).toMatchObject({ code: 0, got: true });
      expect(existsSync(lock)).toBe(false);
    });
  });
});
