import { open, readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { GatewayError } from '../../src/errors.ts';

const STALE_AFTER_MS = 10_000;
const GIVE_UP_AFTER_MS = 10_000;

/**
 * Cross-process mutual exclusion on a lock file created with O_EXCL. A lock whose owner has died (its pid is
 * gone) or that is older than ten seconds is stale and taken over, so a kill -9 never wedges the data dir.
 */
export async function withFileLock<T>(lockPath: string, body: () => Promise<T>): Promise<T> {
  const started = Date.now();
  let wait = 1;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await isStale(lockPath)) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() - started > GIVE_UP_AFTER_MS) {
        throw new GatewayError('GH_ERR_INTERNAL', `timed out waiting for the lock ${lockPath}`);
      }
      await delay(wait);
      wait = Math.min(wait * 2, 20);
    }
  }
  try {
    return await body();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function isStale(lockPath: string): Promise<boolean> {
  try {
    const [content, info] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    if (Date.now() - info.mtimeMs > STALE_AFTER_MS) return true;
    const pid = Number(content);
    if (!Number.isInteger(pid) || pid <= 0) return false; // being written right now
    if (pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false; // vanished between the checks: just retry
  }
}
