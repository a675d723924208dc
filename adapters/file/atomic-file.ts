import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes via a temporary file and a rename, so a reader never sees half a file and a crash leaves the old one.
 * Synchronous: the files are small records written under a lock, where two thread-pool round trips would cost
 * more than the writes themselves.
 */
export function writeFileAtomic(path: string, content: string): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, path);
}

/**
 * `writeFileAtomic` through the thread pool, for a file the event loop must not wait on: on ext4 a rename over an
 * existing file first forces the new file's data to disk (auto_da_alloc), ~1 ms and up to ~14 ms on a busy disk.
 */
export async function replaceFile(path: string, content: string): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await rename(tmp, path);
}

/** A small file of the data dir, written atomically; the dir is created if it is not there yet. */
export function writeDataFile(dataDir: string, name: string, content: string): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileAtomic(join(dataDir, name), content);
}
