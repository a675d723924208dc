import { hash } from 'node:crypto';
import { canonicalize } from './jcs.ts';

/** sha256 as hex. The one-shot `crypto.hash` costs half of a createHash object for the short inputs hashed per call. */
export function sha256Hex(data: string | Uint8Array): string {
  return hash('sha256', data, 'hex');
}

/** sha256 over the JCS form: the digest of a JSON value, written `sha256:<hex>`. */
export function digestOf(value: unknown): string {
  return 'sha256:' + sha256Hex(canonicalize(value ?? null));
}

/** `digestOf` with the size of the JCS form it hashed, in bytes (UTF-8). */
export function sizedDigestOf(value: unknown): { digest: string; bytes: number } {
  const canonical = canonicalize(value ?? null);
  return { digest: 'sha256:' + sha256Hex(canonical), bytes: Buffer.byteLength(canonical) };
}
