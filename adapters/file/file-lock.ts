import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { link, readFile, rename, rm, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { GatewayError } from '../../src/errors.ts';

const STALE_AFTER_MS = 10_000;
const GIVE_UP_AFTER_MS = 10_000;

/** The tokens of the locks this process holds: a lock naming our pid with another token is a dead process's. */
const held = new Set<string>();
/** Callers of this process queue here per lock path, so only one of them at a time contends on the file. */
const queues = new Map<string, Promise<unknown>>();

/**
 * Cross-process mutual exclusion on a lock file created with O_EXCL and holding its owner's token. A lock
 * whose owner has died (its pid is gone) or that is older than ten seconds is stale and taken over, so a kill -9
 * never wedges the data dir. A holder removes the lock only while it still holds its own token.
 *
 * Callers in one process take turns before touching the file: a takeover is then raced by other processes only,
 * never by a sibling that could slip its own lock in while a stale one is being moved aside. A lock that names
 * our own pid but none of our tokens was left by an earlier process that had the same pid (a restarted
 * container), and is stale at once.
 *
 * Taking and releasing an uncontended lock uses synchronous calls: each is a few microseconds on a local disk,
 * while the same call through the thread pool costs a round trip of ~0.1 ms, several per lock (an approval's
 * decision waits on two locked updates in a row). The lock file stays open while it is held, so releasing it
 * checks that the path still names that very file (device and inode, which cannot be reused while it is open)
 * rather than reading the token back: six system calls per lock instead of eight, on every audit append.
 */
export function withFileLock<T>(lockPath: string, body: () => Promise<T>): Promise<T> {
  const previous = queues.get(lockPath);
  const next = previous ? previous.then(run, run) : run();
  queues.set(lockPath, next);
  void next.finally(() => {
    if (queues.get(lockPath) === next) queues.delete(lockPath);
  }).catch(() => undefined);
  return next;

  function run(): Promise<T> {
    return lockedRun(lockPath, body);
  }
}

/** Random once per process, then counted: a token per lock without a call to the random source each time. */
const nonce = randomBytes(6).toString('hex');
let taken = 0;

async function lockedRun<T>(lockPath: string, body: () => Promise<T>): Promise<T> {
  const token = `${process.pid} ${nonce}-${++taken}`;
  const started = Date.now();
  let wait = 1;
  let fd: number;
  for (;;) {
    try {
      fd = openSync(lockPath, 'wx');
      try {
        writeSync(fd, token);
      } catch (err) {
        // A full disk: an empty lock file would read as "being written" for STALE_AFTER_MS.
        closeSync(fd);
        removeIfAny(lockPath);
        throw err;
      }
      held.add(token);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const stale = await staleContent(lockPath);
      if (stale !== undefined) {
        await takeOver(lockPath, stale, token);
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
    held.delete(token);
    const ours = namesOpenFile(lockPath, fd);
    closeSync(fd);
    if (ours) removeIfAny(lockPath);
  }
}

/** Whether `path` names the file open as `fd` (a lock moved aside and put back still does; a newer lock does not). */
function namesOpenFile(path: string, fd: number): boolean {
  const open = fstatSync(fd);
  const named = statSync(path, { throwIfNoEntry: false });
  return named !== undefined && named.ino === open.ino && named.dev === open.dev;
}

/** unlink(2) alone: rmSync would stat the path first, on every lock. */
function removeIfAny(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** The content of the lock if it is stale, else undefined. */
async function staleContent(lockPath: string): Promise<string | undefined> {
  try {
    const [content, info] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    if (Date.now() - info.mtimeMs > STALE_AFTER_MS) return content;
    const pid = Number(content.split(' ')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined; // being written
    if (pid === process.pid) return held.has(content) ? undefined : content;
    try {
      process.kill(pid, 0);
      return undefined;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH' ? content : undefined;
    }
  } catch {
    return undefined; // vanished between the checks: just retry
  }
}

/**
 * Moves a stale lock aside with an atomic rename, so of several processes that saw it stale only one removes
 * it. If what was moved turns out not to be the stale lock (another process replaced it in between), it is
 * put back, unless a new lock already stands there.
 */
async function takeOver(lockPath: string, staleContentSeen: string, token: string): Promise<void> {
  const aside = `${lockPath}.${token.split(' ')[1]}.stale`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // someone else moved it first
  }
  const moved = await readFile(aside, 'utf8').catch(() => staleContentSeen);
  if (moved !== staleContentSeen) await link(aside, lockPath).catch(() => undefined);
  await rm(aside, { force: true });
}
