import { describe, expect, it } from 'vitest';
import { approvalPolicyOf, approverRefusal } from '../../src/approvals/policy.ts';
import type { ApprovalSpec } from '../../src/kernel/decision.ts';
import { sampleApproval } from '../contract/approval-store.contract.ts';

const rules = (...specs: Omit<ApprovalSpec, 'ruleId'>[]): ApprovalSpec[] => specs.map((s, i) => ({ ruleId: `r${i}`, ...s }));

describe('approvalPolicyOf: the matching rules merged to the most restrictive', () => {
  it('defaults: the service TTL, anyone, the requester included, one approver, wait for the retry', () => {
    expect(approvalPolicyOf(undefined)).toEqual({ selfApprove: true, quorum: 1, onApprove: 'wait_for_retry' });
    expect(approvalPolicyOf(rules({}, {}))).toEqual({ selfApprove: true, quorum: 1, onApprove: 'wait_for_retry' });
  });

  it('takes the shortest TTL and the largest quorum', () => {
    expect(approvalPolicyOf(rules({ ttlMs: 120_000, quorum: 2 }, { ttlMs: 90_000 }, { quorum: 3 }))).toMatchObject({ ttlMs: 90_000, quorum: 3 });
  });

  it('forbids self-approval as soon as one rule does', () => {
    expect(approvalPolicyOf(rules({ selfApprove: true }, {})).selfApprove).toBe(true);
    expect(approvalPolicyOf(rules({ selfApprove: true }, { selfApprove: false })).selfApprove).toBe(false);
  });

  it('executes on approval only if every rule that says anything says execute', () => {
    expect(approvalPolicyOf(rules({ onApprove: 'execute' }, {})).onApprove).toBe('execute');
    expect(approvalPolicyOf(rules({ onApprove: 'execute' }, { onApprove: 'wait_for_retry' })).onApprove).toBe('wait_for_retry');
  });

  it('intersects approver lists, through groups as well', () => {
    const groups = { ops: ['bob', 'carol'], sec: ['carol', 'dave'] };
    expect(approvalPolicyOf(rules({ approvers: ['bob', 'carol'] }, {})).approvers).toEqual(['bob', 'carol']);
    expect(approvalPolicyOf(rules({ approvers: ['bob', 'carol'] }, { approvers: ['carol', 'dave'] })).approvers).toEqual(['carol']);
    expect(approvalPolicyOf(rules({ approvers: ['group:ops'] }, { approvers: ['carol', 'erin'] }), groups).approvers).toEqual(['carol']);
    expect(approvalPolicyOf(rules({ approvers: ['group:ops'] }, { approvers: ['group:sec'] }), groups).approvers).toEqual(['carol']);
    // A group every rule names stays a group: its members are read when someone acts.
    expect(approvalPolicyOf(rules({ approvers: ['group:ops', 'erin'] }, { approvers: ['group:ops'] }), groups).approvers).toEqual(['group:ops']);
    expect(approvalPolicyOf(rules({ approvers: ['group:ops', 'erin'] }, { approvers: ['group:ops', 'erin'] }), groups).approvers).toEqual(['group:ops', 'erin']);
  });

  it('says so when nobody can approve: no approver in common, or fewer approvers than the quorum', () => {
    const none = approvalPolicyOf(rules({ approvers: ['bob'] }, { approvers: ['carol'] }));
    expect(none.approvers).toEqual([]);
    expect(none.conflict).toMatch(/r0: bob; r1: carol/);
    expect(approvalPolicyOf(rules({ approvers: ['bob'], quorum: 2 })).conflict).toMatch(/quorum of 2/);
    expect(approvalPolicyOf(rules({ approvers: ['group:ops'], quorum: 2 }), { ops: ['bob', 'carol'] }).conflict).toBeUndefined();
    expect(approvalPolicyOf(rules({ quorum: 5 })).conflict).toBeUndefined();
  });
});

describe('approverRefusal', () => {
  it('checks principals, groups, and the requester', () => {
    const record = sampleApproval('a', { approvers: ['bob', 'group:ops'], approverGroups: { ops: ['carol'] }, selfApprove: false });
    expect(approverRefusal(record, 'bob', 'approve')).toBeUndefined();
    expect(approverRefusal(record, 'carol', 'approve')).toBeUndefined();
    expect(approverRefusal(record, 'carol', 'approve', { ops: ['dave'] })).toMatchObject({ code: 'GH_ERR_APPROVER_NOT_ALLOWED' });
    expect(approverRefusal(record, 'erin', 'deny')).toMatchObject({ code: 'GH_ERR_APPROVER_NOT_ALLOWED' });
    expect(approverRefusal(record, 'alice', 'approve')).toMatchObject({ code: 'GH_ERR_SELF_APPROVAL_FORBIDDEN' });
    expect(approverRefusal(record, 'alice', 'deny')).toBeUndefined();
    // Self-approval allowed still needs the requester among the approvers, when there are any.
    expect(approverRefusal({ ...record, selfApprove: true }, 'alice', 'approve')).toMatchObject({ code: 'GH_ERR_APPROVER_NOT_ALLOWED' });
    expect(approverRefusal({ ...record, selfApprove: true, approvers: undefined }, 'alice', 'approve')).toBeUndefined();
  });
});
