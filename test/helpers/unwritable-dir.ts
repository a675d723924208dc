import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Makes a folder refuse new files for real, whoever runs the tests: `chmod 0500` stops an ordinary user, but not
 * root, for whom `chattr +i` (an immutable folder, on file systems that have it) does. Returns how to undo it, or
 * undefined where neither works here.
 */
export function makeUnwritable(dir: string): (() => void) | undefined {
  chmodSync(dir, 0o500);
  if (refusesFiles(dir)) return () => chmodSync(dir, 0o700);
  chmodSync(dir, 0o700);
  if (spawnSync('chattr', ['+i', dir]).status !== 0) return undefined;
  const undo = () => void spawnSync('chattr', ['-i', dir]);
  if (refusesFiles(dir)) return undo;
  undo();
  return undefined;
}

/** Whether `makeUnwritable` works on this machine; says so loudly when it does not (and fails under CI=true). */
export function unwritableDirsWork(suite: string): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'gh-unwritable-'));
  const undo = makeUnwritable(dir);
  undo?.();
  rmSync(dir, { recursive: true, force: true });
  if (undo) return true;
  const why = 'no way to make a folder unwritable here (chmod does not stop root, and chattr +i is missing or unsupported)';
  if (process.env.CI === 'true') throw new Error(`${why}; CI=true, so ${suite} fails instead of skipping`);
  console.warn(`\n⚠ ${why}: ${suite} is SKIPPED.\n`);
  return false;
}

function refusesFiles(dir: string): boolean {
  const probe = join(dir, `.probe-${process.pid}`);
  try {
    writeFileSync(probe, '');
  } catch {
    return true;
  }
  rmSync(probe, { force: true });
  return false;
}
