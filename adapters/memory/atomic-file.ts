import { renameSync, writeFileSync } from 'node:fs';
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
