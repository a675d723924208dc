import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A random secret kept in `<dataDir>/secrets/<name>.key` (mode 0600), created on first use. Creation links a
 * finished temp file into place, which fails if the file exists: two processes (or replicas sharing the data
 * dir) starting at once both end up with the one key that won, so what one signs the other accepts.
 */
export async function dataDirSecret(dataDir: string, name: string): Promise<string> {
  const dir = join(dataDir, 'secrets');
  const path = join(dir, `${name}.key`);
  const existing = await readKey(path);
  if (existing) return existing;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const created = await readKey(path);
  if (!created) throw new Error(`the secret ${path} is empty or shorter than 32 characters`);
  return created;
}

/** One key per purpose from one secret, so a value signed for one purpose is never valid for another. */
export function deriveKey(secret: string, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`gatehouse/${purpose}`).digest();
}

/**
 * The key for one purpose: derived from `approvals.signingKey` when the config has one (replicas share it that
 * way), else from a random secret created once in `<dataDir>/secrets/<purpose>.key`.
 */
export async function purposeKey(options: { signingKey?: string; dataDir: string }, purpose: string): Promise<Buffer> {
  return deriveKey(options.signingKey ?? (await dataDirSecret(options.dataDir, purpose)), purpose);
}

/** The base64url HMAC-SHA256 of `text`: what request states, session cookies and CSRF tokens are signed with. */
export function signatureOf(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

/** Whether `given` is the signature of `text`, compared over the whole MAC in constant time. */
export function isSignatureOf(key: Buffer, text: string, given: unknown): boolean {
  if (typeof given !== 'string' || given.length === 0 || given.length > 100) return false;
  const presented = Buffer.from(given, 'base64url');
  const expected = createHmac('sha256', key).update(text).digest();
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

async function readKey(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return text.length >= 32 ? text : undefined;
}
