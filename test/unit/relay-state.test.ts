// The relayed input requests' requestState (gh2) and the 2025 side's rounds: what a 2026-07-28 client carries
// between an upstream's input_required and its retry, and how a 2025 client is asked instead.
import { describe, expect, it } from 'vitest';
import { RequestStateCodec, type RelayRequestState } from '../../src/approvals/channels/request-state.ts';
import { answerInputRequests, MAX_INPUT_ROUNDS } from '../../src/scheduler/input-rounds.ts';
import { GatewayError } from '../../src/errors.ts';

const NOW = 1_800_000_000_000;
const relay: RelayRequestState = { jobId: '01J00000000000000000000000', binding: 'sha256:abc', upstreamState: 'v1.up.mac', keys: ['name'], approvalId: 'apr_1', round: 2, expiresAt: NOW + 60_000 };

describe('the relay requestState', () => {
  it("round-trips, the upstream's state inside byte for byte; altered, foreign or expired is refused", () => {
    const codec = new RequestStateCodec(Buffer.alloc(32, 1));
    const token = codec.mintRelay(relay);
    expect(token).toMatch(/^gh2\./);
    expect(codec.verify(token, NOW)).toEqual({ ok: true, relay });
    const [version, body, mac] = token.split('.');
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString());
    const forged = `${version}.${Buffer.from(JSON.stringify({ ...payload, u: 'v1.other.mac' })).toString('base64url')}.${mac}`;
    expect(codec.verify(forged, NOW)).toEqual({ ok: false, problem: 'signature' });
    expect(new RequestStateCodec(Buffer.alloc(32, 2)).verify(token, NOW)).toEqual({ ok: false, problem: 'signature' });
    expect(codec.verify(token, relay.expiresAt)).toEqual({ ok: false, problem: 'expired' });
    // An approval state is still an approval state.
    const approval = codec.mint({ approvalId: 'apr_1', binding: 'b', ask: 'form', expiresAt: NOW + 1 });
    expect(codec.verify(approval, NOW)).toMatchObject({ ok: true, state: { approvalId: 'apr_1' } });
  });
});

describe('a round of input requests for a 2025 client', () => {
  const signal = new AbortController().signal;
  const asking = (round: number) => ({ resultType: 'input_required' as const, inputRequests: { q: { method: 'elicitation/create', params: { message: `round ${round}` } } }, requestState: `s${round}` });

  it("asks the client each request, and gives the next round the answers and the upstream's state", async () => {
    const asked: unknown[] = [];
    const next = await answerInputRequests(asking(1), async (method, params) => (asked.push([method, params]), { action: 'accept' }), signal);
    expect(asked).toEqual([['elicitation/create', { message: 'round 1' }]]);
    expect(next).toEqual({ inputResponses: { q: { action: 'accept' } }, requestState: 's1' });
    expect(MAX_INPUT_ROUNDS).toBe(10);
  });

  it('ends with GH_ERR_ERA_UNTRANSLATABLE: no client to ask, a capability not declared', async () => {
    await expect(answerInputRequests(asking(1), undefined, signal)).rejects.toMatchObject({ code: 'GH_ERR_ERA_UNTRANSLATABLE' });
    const undeclared = async () => Promise.reject(new GatewayError('GH_ERR_METHOD_NOT_FOUND', 'no'));
    await expect(answerInputRequests(asking(1), undeclared, signal)).rejects.toMatchObject({ code: 'GH_ERR_ERA_UNTRANSLATABLE' });
  });
});
