import { rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

/** Writes via a temporary file and a rename, so a reader never sees half a file and a crash leaves the old one. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await rename(tmp, path);
}
