import { isSignatureOf, purposeKey, signatureOf } from '../signing.ts';

/**
 * What a 2026-07-28 client carries between the `input_required` answer and its retry. Signed, not encrypted: the
 * client can read it, so it holds nothing secret (an id, a digest, an expiry).
 */
export interface ApprovalRequestState {
  /** The approval the retry resumes. */
  approvalId: string;
  /** `bindingKeyOf` the call that asked: a retry with other arguments, tool or caller does not match it. */
  binding: string;
  /** What the client was asked: a confirm form or a link to the approval page. */
  ask: 'form' | 'url';
  /** Epoch ms after which the state is refused. */
  expiresAt: number;
}

export type RequestStateProblem = 'malformed' | 'signature' | 'expired';

export type VerifiedRequestState = { ok: true; state: ApprovalRequestState } | { ok: false; problem: RequestStateProblem };

const VERSION = 'gh1';
const MAX_LENGTH = 2_048;

/**
 * The MRTR `requestState` codec: `gh1.<body>.<mac>`, where body is the base64url of the JSON payload
 * `{ a: approvalId, b: binding, k: ask, x: expiresAt }` and mac the base64url HMAC-SHA256 of `gh1.<body>`.
 * Any replica holding the same key verifies what another minted: nothing of the call stays in memory.
 */
export class RequestStateCodec {
  constructor(private readonly key: Buffer) {
    if (key.length < 32) throw new RangeError('the request-state key must be at least 32 bytes');
  }

  mint(state: ApprovalRequestState): string {
    const body = Buffer.from(JSON.stringify({ a: state.approvalId, b: state.binding, k: state.ask, x: state.expiresAt }), 'utf8').toString('base64url');
    return `${VERSION}.${body}.${signatureOf(this.key, `${VERSION}.${body}`)}`;
  }

  verify(value: unknown, now: number): VerifiedRequestState {
    if (typeof value !== 'string' || value.length > MAX_LENGTH) return { ok: false, problem: 'malformed' };
    const parts = value.split('.');
    if (parts.length !== 3 || parts[0] !== VERSION || !parts[1] || !parts[2]) return { ok: false, problem: 'malformed' };
    const [, body, mac] = parts;
    if (!isSignatureOf(this.key, `${VERSION}.${body}`, mac)) return { ok: false, problem: 'signature' };
    let payload: { a?: unknown; b?: unknown; k?: unknown; x?: unknown };
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, problem: 'malformed' };
    }
    const { a, b, k, x } = payload ?? {};
    if (typeof a !== 'string' || typeof b !== 'string' || (k !== 'form' && k !== 'url') || typeof x !== 'number') return { ok: false, problem: 'malformed' };
    if (x <= now) return { ok: false, problem: 'expired' };
    return { ok: true, state: { approvalId: a, binding: b, ask: k, expiresAt: x } };
  }
}

/** The codec's key (see purposeKey: `<dataDir>/secrets/request-state.key` unless the config has a signing key). */
export function requestStateKey(options: { signingKey?: string; dataDir: string }): Promise<Buffer> {
  return purposeKey(options, 'request-state');
}
