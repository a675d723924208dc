import { createHash } from 'node:crypto';
import { canonicalize } from './jcs.ts';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 over the JCS form: the digest of a JSON value, written `sha256:<hex>`. */
export function digestOf(value: unknown): string {
  return 'sha256:' + sha256Hex(canonicalize(value ?? null));
}
