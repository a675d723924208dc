import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withFileLock } from '../../adapters/memory/file-lock.ts';

describe('file lock', () => {
  it('never lets two bodies overlap', async () => {
    const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
    let inside = 0;
    let overlapped = false;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        withFileLock(lock, async () => {
          inside++;
          if (inside > 1) overlapped = true;
          await new Promise((r) => setTimeout(r, 2));
          inside--;
        }),
      ),
    );
    expect(overlapped).toBe(false);
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock left by a process that died', async () => {
    const lock = join(mkdtempSync(join(tmpdir(), 'gh-lock-')), 'x.lock');
    writeFileSync(lock, '2147483646 deadbeef'); // no such pid
    expect(await withFileLock(lock, async () => 'got it')).toBe('got it');
    expect(existsSync(lock)).toBe(false);
  });
});
