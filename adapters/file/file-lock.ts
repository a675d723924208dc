import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { link, readFile, rename, rm, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { GatewayError } from '../../src/errors.ts';

const STALE_AFTER_MS = 10_000;
const GIVE_UP_AFTER_MS = 10_000;
/** A kept lock is let go and taken anew at least this often, so its file never ages towards STALE_AFTER_MS. */
const MAX_KEEP_MS = 2_000;
/** How often a kept lock looks for a waiter's `.want` file. */
const WANT_CHECK_MS = 5;
/** After letting a waiter in, the lock is taken per turn for this long: longer than a waiter's longest pause (20 ms). */
const YIELD_MS = 100;

/** The tokens of the locks this process holds: a lock naming our pid with another token is a dead process's. */
const held = new Set<string>();
/** Callers of this process queue here per lock path, so only one of them at a time contends on the file. */
const queues = new Map<string, Promise<unknown>>();

export interface FileLockOptions {
  /**
   * Keeps the lock this long after the body for the next turn of this process on the same path, instead of
   * removing it at once: taking and removing the lock file is most of an audit append's system calls (a create and
   * an unlink, on ext4 the dearest of them). Another process that waits for it says so in `<lock>.want`, and the
   * lock is let go within WANT_CHECK_MS and not kept again for YIELD_MS.
   */
  keepMs?: number;
}

/**
 * One turn under a lock: which taking of the lock it ran under and its place among that taking's turns. A turn
 * that directly follows an owner's previous one (`followsTurn`) knows that nobody else, in this process or another,
 * held the lock in between.
 */
export interface LockTurn {
  readonly taking: number;
  readonly seq: number;
}

export const followsTurn = (turn: LockTurn, previous: LockTurn | undefined): boolean => previous !== undefined && previous.taking === turn.taking && previous.seq === turn.seq - 1;

/** A lock this process holds, in a turn or kept between turns. */
interface HeldLock {
  /** Which taking of a lock in this process. */
  taking: number;
  /** Turns run under it. */
  turns: number;
  fd: number;
  token: string;
  /** When it was taken: kept no longer than MAX_KEEP_MS. */
  since: number;
  lastUsed: number;
  /** When a waiter's `.want` file was last looked for. */
  wantCheckedAt: number;
  /** keepMs of the turn that kept it: idle longer, it is let go. */
  keptFor: number;
  busy: boolean;
  watch?: NodeJS.Timeout;
}

/** Locks kept between turns (and in the turn that uses one), per path. */
const kept = new Map<string, HeldLock>();
/** Paths whose lock a waiting process asked for: taken per turn until then. */
const yielding = new Map<string, number>();

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
 * rather than reading the token back. With `keepMs` (the audit chain's appends) a lock outlives its turn; see
 * FileLockOptions.
 */
export function withFileLock<T>(lockPath: string, body: (turn: LockTurn) => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const previous = queues.get(lockPath);
  const next = previous ? previous.then(run, run) : run();
  queues.set(lockPath, next);
  void next.finally(() => {
    if (queues.get(lockPath) === next) queues.delete(lockPath);
  }).catch(() => undefined);
  return next;

  function run(): Promise<T> {
    return lockedRun(lockPath, body, options.keepMs);
  }
}

/** Random once per process, then counted: a token per lock without a call to the random source each time. */
const nonce = randomBytes(6).toString('hex');
let taken = 0;

async function lockedRun<T>(lockPath: string, body: (turn: LockTurn) => Promise<T>, keepMs: number | undefined): Promise<T> {
  let lock = kept.get(lockPath);
  // Kept past its time, the event loop was held up before the lock could be let go (for long, another process may
  // have taken it as stale): used again only while the path still names it.
  if (lock && Date.now() - lock.lastUsed > lock.keptFor && !namesOpenFile(lockPath, lock.fd)) {
    letGo(lockPath, lock);
    lock = undefined;
  }
  lock ??= await acquire(lockPath);
  lock.busy = true;
  try {
    return await body({ taking: lock.taking, seq: ++lock.turns });
  } finally {
    lock.busy = false;
    lock.lastUsed = Date.now();
    if (keepMs !== undefined && mayKeep(lockPath, lock, lock.lastUsed)) keep(lockPath, lock, keepMs);
    else letGo(lockPath, lock);
  }
}

async function acquire(lockPath: string): Promise<HeldLock> {
  const taking = ++taken;
  const token = `${process.pid} ${nonce}-${taking}`;
  const started = Date.now();
  const want = `${lockPath}.want`;
  let wanted = false;
  let wait = 1;
  try {
    for (;;) {
      try {
        const fd = openSync(lockPath, 'wx');
        try {
          writeSync(fd, token);
        } catch (err) {
          // A full disk: an empty lock file would read as "being written" for STALE_AFTER_MS.
          closeSync(fd);
          removeIfAny(lockPath);
          throw err;
        }
        held.add(token);
        const now = Date.now();
        return { taking, turns: 0, fd, token, since: now, lastUsed: now, wantCheckedAt: now, keptFor: 0, busy: false };
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
        // Said on every pause: a holder that keeps the lock lets it go once it sees this (another waiter may have removed it).
        wanted = touch(want) || wanted;
        await delay(wait);
        wait = Math.min(wait * 2, 20);
      }
    }
  } finally {
    if (wanted) removeIfAny(want);
  }
}

/**
 * Whether the lock may be kept at `now`: not past MAX_KEEP_MS, and no process waits for it. The `.want` file is
 * looked for at most every WANT_CHECK_MS, here at a turn's end as well as between turns: a writer whose turns
 * follow each other without a pause of the event loop would never run a timer.
 */
function mayKeep(lockPath: string, lock: HeldLock, now: number): boolean {
  if (now - lock.since >= MAX_KEEP_MS) return false;
  if (now - lock.wantCheckedAt >= WANT_CHECK_MS) {
    lock.wantCheckedAt = now;
    if (wantedSince(`${lockPath}.want`, now - GIVE_UP_AFTER_MS)) yielding.set(lockPath, now + YIELD_MS);
  }
  const until = yielding.get(lockPath);
  if (until === undefined) return true;
  if (now < until) return false;
  yielding.delete(lockPath);
  return true;
}

function keep(lockPath: string, lock: HeldLock, keepMs: number): void {
  lock.keptFor = keepMs;
  if (lock.watch) return;
  kept.set(lockPath, lock);
  lock.watch = setInterval(() => {
    const now = Date.now();
    // A turn in progress decides at its end.
    if (!lock.busy && (now - lock.lastUsed >= lock.keptFor || !mayKeep(lockPath, lock, now))) letGoQuietly(lockPath, lock);
  }, WANT_CHECK_MS);
  lock.watch.unref();
  releaseAtExit();
}

function letGo(lockPath: string, lock: HeldLock): void {
  if (lock.watch) clearInterval(lock.watch);
  lock.watch = undefined;
  if (kept.get(lockPath) === lock) kept.delete(lockPath);
  held.delete(lock.token);
  const ours = namesOpenFile(lockPath, lock.fd);
  closeSync(lock.fd);
  if (ours) removeIfAny(lockPath);
}

/**
 * Between turns nobody waits for the answer: a lock that cannot be removed (a folder made unwritable) names this
 * live process until it ends, and is stale to it at once (its token is forgotten), so nothing is wedged.
 */
function letGoQuietly(lockPath: string, lock: HeldLock): void {
  try {
    letGo(lockPath, lock);
  } catch {
    // left to staleness, as above
  }
}

let exitHook = false;
/** A process that ends normally leaves no kept lock behind (one killed leaves a dead pid's lock, taken over at once). */
function releaseAtExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const [path, lock] of kept) if (!lock.busy) letGoQuietly(path, lock);
  });
}

/** Creates `path` or sets its time to now; false when it could not. */
function touch(path: string): boolean {
  try {
    closeSync(openSync(path, 'a'));
    const now = new Date();
    utimesSync(path, now, now);
    return true;
  } catch {
    return false;
  }
}

/** Whether a waiter said so since `since`: a `.want` left by a waiter that died stops counting once it has aged. */
function wantedSince(path: string, since: number): boolean {
  const said = statSync(path, { throwIfNoEntry: false });
  return said !== undefined && said.mtimeMs >= since;
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
