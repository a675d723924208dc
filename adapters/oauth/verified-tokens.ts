import { createHash } from 'node:crypto';

const ENTRIES = 10_000;

/**
 * Tokens already proven, by their SHA-256 (the raw token is held by nothing but the request that carried it), each
 * until a time the verifier chose (never past its `exp`): a token sent again costs a hash, not a signature check
 * or a round trip to the authorization server. Bounded: past 10,000 entries the oldest goes.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, { claims: Record<string, unknown>; until: number }>();

  digest(token: string): string {
    return createHash('sha256').update(token).digest('base64url');
  }

  get(digest: string, now: number): Record<string, unknown> | undefined {
    const entry = this.entries.get(digest);
    if (!entry) return undefined;
    if (entry.until > now) return entry.claims;
    this.entries.delete(digest);
    return undefined;
  }

  set(digest: string, claims: Record<string, unknown>, until: number): void {
    if (this.entries.size >= ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(digest, { claims, until });
  }
}
