import { describe, expect, it } from 'vitest';
import { checkGrantRequest, grantMiss, prefilledCondition } from '../../src/approvals/grant.ts';
import type { ApprovalGrant, ApprovalRecord } from '../../src/protocol/approval-record.ts';

const approval = { id: 'apr_1', quorum: 1, sessionId: 's1' } as ApprovalRecord;
const grant = (over: Partial<ApprovalGrant> = {}) =>
  ({ tool: 'fx__write', server: 'fx', principal: 'p', tenant: 't', toolDigest: 'sha256:d', ruleIds: ['w'], grant: { condition: 'pathUnder(args.path, "/srv/docs")', scope: 'principal', approvalId: 'apr_1', grantedBy: 'bob', ...over } }) as ApprovalRecord & { grant: ApprovalGrant };
const call = (args: Record<string, unknown>, over = {}) => ({ sessionId: 's1', arguments: args, effect: 'require_approval' as const, ruleIds: ['w'], toolDigest: 'sha256:d', approval: { selfApprove: true, quorum: 1, onApprove: 'wait_for_retry' as const }, ...over });
const groups = { reviewers: ['bob'] };

describe('grant conditions', () => {
  it('pre-fills equality on each argument, as CEL literals that compile and match the call', () => {
    const args = { path: '/srv/docs/a "b".txt', count: 3, ratio: 0.5, whole: 2.0, deep: { list: [1, 'x', null, true] }, 'odd-key': 'v' };
    const condition = prefilledCondition(args);
    const checked = checkGrantRequest({ condition, scope: 'principal', durationMs: 15 * 60_000 }, approval);
    expect(grantMiss(grant({ condition: checked.condition }), call(args), groups)).toBeUndefined();
    expect(grantMiss(grant({ condition: checked.condition }), call({ ...args, count: 4 }), groups)).toBe('miss');
    expect(prefilledCondition({})).toBe('size(args) == 0');
  });

  it('matches by the condition, the session, the rules that ask, and the definition it was given for', () => {
    expect(grantMiss(grant(), call({ path: '/srv/docs/x' }), groups)).toBeUndefined();
    expect(grantMiss(grant(), call({ path: '/srv/docs/../etc/passwd' }), groups)).toBe('miss');
    // An evaluation error (a missing argument) is no match.
    expect(grantMiss(grant(), call({ other: 1 }), groups)).toBe('miss');
    expect(grantMiss(grant({ scope: 'session', sessionId: 's1' }), call({ path: '/srv/docs/x' }, { sessionId: 's2' }), groups)).toBe('miss');
    expect(grantMiss(grant({ scope: 'session', sessionId: 's1' }), call({ path: '/srv/docs/x' }, { sessionId: undefined }), groups)).toBe('miss');
    expect(grantMiss(grant(), call({ path: '/srv/docs/x' }, { ruleIds: ['w', 'stricter'] }), groups)).toBe('miss');
    expect(grantMiss(grant(), call({ path: '/srv/docs/x' }, { toolDigest: 'sha256:changed' }), groups)).toBe('stale');
  });

  it('serves only a call the current policy holds for approval: never one it denies or allows (a grant is an approval, not a verdict)', () => {
    expect(grantMiss(grant(), call({ path: '/srv/docs/x' }, { effect: 'deny' }), groups)).toBe('miss');
    expect(grantMiss(grant(), call({ path: '/srv/docs/x' }, { effect: 'allow' }), groups)).toBe('miss');
    expect(grantMiss(grant(), call({ path: '/srv/docs/x' }, { effect: 'allow_with_constraints' }), groups)).toBe('miss');
    expect(grantMiss(grant(), call({ path: '/srv/docs/x' }), groups)).toBeUndefined();
  });

  it("stands in only while its granter could give the call's approval alone: not past a raised quorum, changed approvers or withdrawn self-approval", () => {
    const args = { path: '/srv/docs/x' };
    const policy = (over: object) => ({ approval: { selfApprove: true, quorum: 1, onApprove: 'wait_for_retry' as const, ...over } });
    expect(grantMiss(grant(), call(args, policy({ approvers: ['bob'] })), groups)).toBeUndefined();
    expect(grantMiss(grant(), call(args, policy({ approvers: ['group:reviewers'] })), groups)).toBeUndefined();
    expect(grantMiss(grant(), call(args, policy({ approvers: ['group:reviewers'] })), { reviewers: ['carol'] })).toBe('miss');
    expect(grantMiss(grant(), call(args, policy({ approvers: ['carol'] })), groups)).toBe('miss');
    expect(grantMiss(grant(), call(args, policy({ quorum: 2, approvers: ['bob', 'carol'] })), groups)).toBe('miss');
    expect(grantMiss(grant(), call(args, policy({ approvers: [], conflict: 'no approver in common' })), groups)).toBe('miss');
    // The caller granted their own calls: that holds only while the policy lets a caller approve their own call.
    expect(grantMiss(grant({ grantedBy: 'p' }), call(args), groups)).toBeUndefined();
    expect(grantMiss(grant({ grantedBy: 'p' }), call(args, policy({ selfApprove: false })), groups)).toBe('miss');
  });

  it('refuses what a grant may not be, with GH_ERR_GRANT_INVALID', () => {
    const ok = { condition: 'true', scope: 'principal', durationMs: 8 * 3_600_000 };
    expect(checkGrantRequest(ok, approval).durationMs).toBe(8 * 3_600_000);
    for (const bad of [
      { ...ok, condition: 'args.x.matches("a+")' },
      { ...ok, condition: '' },
      { ...ok, scope: 'tenant' },
      { ...ok, durationMs: 15 * 60_000 - 1 },
      { ...ok, durationMs: 8 * 3_600_000 + 1 },
    ]) {
      expect(() => checkGrantRequest(bad, approval)).toThrow(expect.objectContaining({ code: 'GH_ERR_GRANT_INVALID' }));
    }
    expect(() => checkGrantRequest({ ...ok, scope: 'session' }, { ...approval, sessionId: undefined })).toThrow(expect.objectContaining({ code: 'GH_ERR_GRANT_INVALID' }));
    expect(() => checkGrantRequest(ok, { ...approval, quorum: 2 })).toThrow(expect.objectContaining({ code: 'GH_ERR_GRANT_INVALID' }));
  });
});
