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

/**
 * What a 2026-07-28 client carries between an upstream's `input_required` (relayed) and its retry: the upstream's
 * own state, which goes back to it byte for byte, wrapped in Gatehouse's signature and bound to the call.
 */
export interface RelayRequestState {
  /** The job every round of the call belongs to. */
  jobId: string;
  /** `relayBindingOf` the call: a retry with other arguments, tool or caller does not match it. */
  binding: string;
  /** The upstream's own requestState, if it gave one. */
  upstreamState?: string;
  /** The keys of the input requests the upstream asked: only these of the client's answers go back to it. */
  keys: string[];
  /** The approval this job ran under, consumed by it in an earlier round: later rounds run under it too. */
  approvalId?: string;
  /** How many rounds the upstream has asked for so far (1 on the first retry). */
  round: number;
  expiresAt: number;
}

export type RequestStateProblem = 'malformed' | 'signature' | 'expired';

export type VerifiedRequestState = { ok: true; state: ApprovalRequestState } | { ok: true; relay: RelayRequestState } | { ok: false; problem: RequestStateProblem };

const VERSION = 'gh1';
const RELAY_VERSION = 'gh2';
const MAX_LENGTH = 2_048;
/** A relayed state holds the upstream's, whose size is the upstream's business (within reason). */
const MAX_RELAY_LENGTH = 64 * 1024;

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

  mintRelay(state: RelayRequestState): string {
    const { jobId: j, binding: b, upstreamState: u, keys: q, approvalId: a, round: n, expiresAt: x } = state;
    const body = Buffer.from(JSON.stringify({ j, b, ...(u === undefined ? {} : { u }), q, ...(a === undefined ? {} : { a }), n, x }), 'utf8').toString('base64url');
    return `${RELAY_VERSION}.${body}.${signatureOf(this.key, `${RELAY_VERSION}.${body}`)}`;
  }

  verify(value: unknown, now: number): VerifiedRequestState {
    if (typeof value !== 'string' || value.length > MAX_RELAY_LENGTH) return { ok: false, problem: 'malformed' };
    const parts = value.split('.');
    const version = parts[0];
    if (parts.length !== 3 || (version !== VERSION && version !== RELAY_VERSION) || !parts[1] || !parts[2]) return { ok: false, problem: 'malformed' };
    if (version === VERSION && value.length > MAX_LENGTH) return { ok: false, problem: 'malformed' };
    const [, body, mac] = parts;
    if (!isSignatureOf(this.key, `${version}.${body}`, mac)) return { ok: false, problem: 'signature' };
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, problem: 'malformed' };
    }
    return version === VERSION ? approvalState(payload, now) : relayState(payload, now);
  }
}

function relayState(payload: Record<string, unknown> | null, now: number): VerifiedRequestState {
  const { j, b, u, q, a, n, x } = payload ?? {};
  if (typeof j !== 'string' || typeof b !== 'string' || (u !== undefined && typeof u !== 'string') || !Array.isArray(q) || !q.every((k) => typeof k === 'string')) return { ok: false, problem: 'malformed' };
  if ((a !== undefined && typeof a !== 'string') || typeof n !== 'number' || typeof x !== 'number') return { ok: false, problem: 'malformed' };
  if (x <= now) return { ok: false, problem: 'expired' };
  return { ok: true, relay: { jobId: j, binding: b, ...(u === undefined ? {} : { upstreamState: u }), keys: q as string[], ...(a === undefined ? {} : { approvalId: a }), round: n, expiresAt: x } };
}

function approvalState(payload: Record<string, unknown> | null, now: number): VerifiedRequestState {
  const { a, b, k, x } = payload ?? {};
  if (typeof a !== 'string' || typeof b !== 'string' || (k !== 'form' && k !== 'url') || typeof x !== 'number') return { ok: false, problem: 'malformed' };
  if (x <= now) return { ok: false, problem: 'expired' };
  return { ok: true, state: { approvalId: a, binding: b, ask: k, expiresAt: x } };
}

/** The codec's key (see purposeKey: `<dataDir>/secrets/request-state.key` unless the config has a signing key). */
export function requestStateKey(options: { signingKey?: string; dataDir: string }): Promise<Buffer> {
  return purposeKey(options, 'request-state');
}
