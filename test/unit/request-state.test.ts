// The MRTR requestState codec: what one replica signs, another with the same key verifies; anything altered,
// foreign or expired is refused with a reason; the key comes from the config or, once, from the data dir.
import { createHmac } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RequestStateCodec, requestStateKey, type ApprovalRequestState } from '../../src/approvals/channels/request-state.ts';

const NOW = 1_800_000_000_000;
const state: ApprovalRequestState = { approvalId: 'apr_01J0000000000000000000000', binding: 'sha256:abc', ask: 'form', expiresAt: NOW + 60_000 };
const key = (fill: number) => Buffer.alloc(32, fill);

/** The base64url body of a state with one field of its JSON changed, signature kept. */
function altered(token: string, change: (payload: Record<string, unknown>) => void): string {
  const [version, body, mac] = token.split('.');
  const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  change(payload);
  return `${version}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${mac}`;
}

describe('requestState codec', () => {
  it('round-trips a state, readable but signed', () => {
    const codec = new RequestStateCodec(key(1));
    const token = codec.mint(state);
    expect(token).toMatch(/^gh1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(codec.verify(token, NOW)).toEqual({ ok: true, state });
    // Any replica with the same key verifies it: nothing is kept in memory.
    expect(new RequestStateCodec(key(1)).verify(token, NOW)).toEqual({ ok: true, state });
  });

  it('refuses a state whose payload was changed (another approval, binding or expiry)', () => {
    const codec = new RequestStateCodec(key(1));
    const token = codec.mint(state);
    expect(codec.verify(altered(token, (p) => (p.a = 'apr_other')), NOW)).toEqual({ ok: false, problem: 'signature' });
    expect(codec.verify(altered(token, (p) => (p.b = 'sha256:other')), NOW)).toEqual({ ok: false, problem: 'signature' });
    expect(codec.verify(altered(token, (p) => (p.x = NOW + 10 ** 9)), NOW)).toEqual({ ok: false, problem: 'signature' });
    expect(codec.verify(altered(token, (p) => (p.k = 'url')), NOW)).toEqual({ ok: false, problem: 'signature' });
  });

  it('refuses a changed or truncated signature, and one made with another key', () => {
    const codec = new RequestStateCodec(key(1));
    const token = codec.mint(state);
    const flipped = token.slice(0, -2) + (token.endsWith('AA') ? 'AB' : 'AA');
    expect(codec.verify(flipped, NOW)).toEqual({ ok: false, problem: 'signature' });
    expect(codec.verify(token.slice(0, -4), NOW)).toEqual({ ok: false, problem: 'signature' });
    expect(new RequestStateCodec(key(2)).verify(token, NOW)).toEqual({ ok: false, problem: 'signature' });
  });

  it('refuses an expired state', () => {
    const codec = new RequestStateCodec(key(1));
    expect(codec.verify(codec.mint(state), state.expiresAt)).toEqual({ ok: false, problem: 'expired' });
  });

  it('refuses what is not a state at all', () => {
    const codec = new RequestStateCodec(key(1));
    for (const bad of [undefined, 42, '', 'gh1', 'gh1..', 'v1.e30.AAAA', 'gh1.e30', 'a.b.c.d', 'x'.repeat(5000)]) {
      expect(codec.verify(bad, NOW).ok).toBe(false);
    }
    // Signed, but not our payload (the key leaked into another purpose would be needed to forge this).
    const body = Buffer.from('{"a":1}').toString('base64url');
    const signedJunk = `gh1.${body}.${createHmac('sha256', key(1)).update(`gh1.${body}`).digest('base64url')}`;
    expect(codec.verify(signedJunk, NOW)).toEqual({ ok: false, problem: 'malformed' });
  });

  it('takes its key from approvals.signingKey, else from a secret created once in the data dir (mode 0600)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-rs-'));
    const first = await requestStateKey({ dataDir });
    const second = await requestStateKey({ dataDir });
    expect(first.equals(second)).toBe(true);
    expect(statSync(join(dataDir, 'secrets', 'request-state.key')).mode & 0o777).toBe(0o600);
    const configured = await requestStateKey({ dataDir, signingKey: 'k'.repeat(32) });
    expect(configured.equals(first)).toBe(false);
    expect(configured.equals(await requestStateKey({ dataDir: mkdtempSync(join(tmpdir(), 'gatehouse-rs-')), signingKey: 'k'.repeat(32) }))).toBe(true);
    expect(() => new RequestStateCodec(Buffer.alloc(16))).toThrow(RangeError);
  });
});
