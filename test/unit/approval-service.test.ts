import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApprovalService, type ApprovalBinding } from '../../src/approvals/service.ts';
import type { ApproverGroups } from '../../src/approvals/policy.ts';
import type { ApprovalSpec } from '../../src/kernel/decision.ts';
import { AuditTrail } from '../../src/audit/trail.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import type { Clock } from '../../src/ports.ts';

const TTL = 60_000;
const binding: ApprovalBinding = { tenant: 't', principal: 'alice', server: 'fx', tool: 'fx__write', argsDigest: 'sha256:a', toolDigest: 'sha256:t', policySnapshot: 'sha256:p' };
const details = { jobId: 'J', ruleIds: ['r'], reason: 'destructive', argsPreview: '{}' };
const withRules = (...specs: Omit<ApprovalSpec, 'ruleId'>[]) => ({ ...details, specs: specs.map((s, i) => ({ ruleId: `r${i}`, ...s })) });

function setup(options: { groups?: ApproverGroups; dir?: string } = {}) {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'gh-apr-'));
  let now = 1_000_000;
  const clock: Clock = { now: () => now, sleep: async () => undefined };
  const auditStore = new FileAuditStore(dir);
  const audit = new AuditTrail(new ChainWriter(auditStore), { flushIntervalMs: 0 });
  const warnings: string[] = [];
  const store = new FileApprovalStore(dir);
  const service = new ApprovalService(store, audit, clock, TTL, { ...(options.groups ? { groups: options.groups } : {}), log: { warn: (msg) => warnings.push(msg) } });
  const events = async (): Promise<AuditEvent[]> => {
    await audit.flush();
    const out: AuditEvent[] = [];
    for await (const r of auditStore.read('t')) out.push(r);
    return out;
  };
  return { service, store, dir, clock, warnings, events, advance: (ms: number) => (now += ms) };
}

const typesAndActors = (events: AuditEvent[]) => events.map((e) => `${e.type}:${e.actor}`);

describe('approval lifecycle (manual clock)', () => {
  it('shares one pending approval between identical calls; other arguments get their own', async () => {
    const { service } = setup();
    const first = await service.resolve(binding, details);
    const second = await service.resolve(binding, details);
    expect(first).toMatchObject({ kind: 'pending', created: true });
    expect(second).toMatchObject({ kind: 'pending', created: false, approval: { id: first.approval.id } });
    const otherArgs = await service.resolve({ ...binding, argsDigest: 'sha256:b' }, details);
    expect(otherArgs).toMatchObject({ kind: 'pending', created: true });
    expect(otherArgs.approval.id).not.toBe(first.approval.id);
    const otherCaller = await service.resolve({ ...binding, principal: 'mallory' }, details);
    expect(otherCaller.approval.id).not.toBe(first.approval.id);
  });

  it('runs an approved call once: the first resolve claims it, the next asks again', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, details);
    await service.approve(approval.id, 'bob', 'ok');
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'run', approval: { id: approval.id, state: 'consumed' } });
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'pending', created: true });
  });

  it('expires after the TTL, reports the expiry once, and refuses a late approval', async () => {
    const { service, advance } = setup();
    const { approval } = await service.resolve(binding, details);
    advance(TTL);
    await expect(service.approve(approval.id, 'bob')).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_EXPIRED' });
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'expired', approval: { id: approval.id } });
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'pending', created: true });
  });

  it('answers identical retries of a denied call with the denial until the TTL has passed', async () => {
    const { service, advance } = setup();
    const { approval } = await service.resolve(binding, details);
    await service.deny(approval.id, 'bob', 'no');
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'denied' });
    advance(TTL + 1);
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'pending', created: true });
  });

  it('refuses transitions out of a settled state and audits every transition with its actor', async () => {
    const { service, events } = setup();
    const { approval } = await service.resolve(binding, details);
    await service.deny(approval.id, 'carol');
    await expect(service.approve(approval.id, 'bob')).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_INVALID_STATE' });
    expect(typesAndActors(await events())).toEqual(['approval.created:alice', 'approval.denied:carol']);
  });

  it('audits expiry as gatehouse, a cancel as the cancelling principal, and a claim as gatehouse', async () => {
    const { service, events, advance } = setup();
    const expiring = await service.resolve(binding, details);
    advance(TTL);
    expect(await service.expireDue()).toBe(1);
    const cancelled = await service.resolve({ ...binding, argsDigest: 'sha256:c' }, details);
    await service.cancel(cancelled.approval.id, 'alice', 'the client cancelled the call');
    const used = await service.resolve({ ...binding, argsDigest: 'sha256:u' }, details);
    await service.approve(used.approval.id, 'bob');
    await service.resolve({ ...binding, argsDigest: 'sha256:u' }, details);
    const all = await events();
    expect(all.filter((e) => e.data.approvalId === expiring.approval.id).map((e) => `${e.type}:${e.actor}`)).toEqual(['approval.created:alice', 'approval.expired:gatehouse']);
    expect(all.filter((e) => e.data.approvalId === cancelled.approval.id).map((e) => `${e.type}:${e.actor}`)).toEqual(['approval.created:alice', 'approval.cancelled:alice']);
    expect(all.filter((e) => e.data.approvalId === used.approval.id).map((e) => `${e.type}:${e.actor}`)).toEqual(['approval.created:alice', 'approval.approved:bob', 'approval.consumed:gatehouse']);
  });
});

describe('binding', () => {
  it('keeps an approval across a policy change, and records the snapshot the call ran under', async () => {
    const { service, events } = setup();
    const { approval } = await service.resolve(binding, details);
    await service.approve(approval.id, 'bob');
    const underNewPolicy = { ...binding, policySnapshot: 'sha256:q' };
    const ran = await service.resolve(underNewPolicy, { ...details, jobId: 'J2' });
    expect(ran).toMatchObject({ kind: 'run', approval: { id: approval.id, state: 'consumed', policySnapshot: 'sha256:p', claimedBy: { jobId: 'J2', policySnapshot: 'sha256:q' } } });
    expect(ran.approval.history.at(-1)).toMatchObject({ state: 'consumed', actor: 'gatehouse', jobId: 'J2', policySnapshot: 'sha256:q' });
    expect((await events()).at(-1)).toMatchObject({ type: 'approval.consumed', jobId: 'J2', data: { approvalId: approval.id, policySnapshot: 'sha256:q' } });
  });

  it('refuses an approved call whose tool definition changed, cancels the approval with the code, then asks anew', async () => {
    const { service, events } = setup();
    const { approval } = await service.resolve(binding, details);
    await service.approve(approval.id, 'bob');
    const changed = { ...binding, toolDigest: 'sha256:t2' };
    const stale = await service.resolve(changed, details);
    expect(stale).toMatchObject({ kind: 'stale', code: 'GH_ERR_APPROVAL_STALE', approval: { id: approval.id, state: 'cancelled' } });
    expect(stale.kind === 'stale' && stale.reason).toContain('changed');
    expect((await events()).at(-1)).toMatchObject({ type: 'approval.cancelled', actor: 'gatehouse', data: { code: 'GH_ERR_APPROVAL_STALE' } });
    const fresh = await service.resolve(changed, details);
    expect(fresh).toMatchObject({ kind: 'pending', created: true, approval: { toolDigest: 'sha256:t2' } });
  });

  it('refuses a pending approval whose tool changed too: a human must see the new definition', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, details);
    expect(await service.resolve({ ...binding, toolDigest: 'sha256:t2' }, details)).toMatchObject({ kind: 'stale', approval: { id: approval.id, state: 'cancelled' } });
    await expect(service.approve(approval.id, 'bob')).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_INVALID_STATE' });
  });

  it('verifyBinding names what differs', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, details);
    expect(service.verifyBinding(approval, binding)).toBeUndefined();
    expect(service.verifyBinding(approval, { ...binding, policySnapshot: 'sha256:q' })).toBeUndefined();
    expect(service.verifyBinding(approval, { ...binding, argsDigest: 'sha256:b' })).toMatchObject({ code: 'GH_ERR_APPROVAL_MISMATCH' });
    expect(service.verifyBinding(approval, { ...binding, toolDigest: 'sha256:t2' })).toMatchObject({ code: 'GH_ERR_APPROVAL_STALE' });
    expect(service.verifyBinding(approval, { ...binding, principal: 'mallory' })).toMatchObject({ code: 'GH_ERR_APPROVAL_MISMATCH' });
    expect(service.verifyBinding(approval, { ...binding, tenant: 'other' })).toMatchObject({ code: 'GH_ERR_APPROVAL_MISMATCH' });
    expect(service.verifyBinding(approval, { ...binding, tool: 'fx__delete' })).toMatchObject({ code: 'GH_ERR_APPROVAL_MISMATCH' });
  });

  it('resumes a named approval only for its own call, and falls back to asking anew once it is used', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, details);
    expect(await service.resume(approval.id, { ...binding, argsDigest: 'sha256:b' }, details)).toMatchObject({ kind: 'mismatch', code: 'GH_ERR_APPROVAL_MISMATCH' });
    expect(await service.resume(approval.id, binding, details)).toMatchObject({ kind: 'pending', created: false, approval: { id: approval.id } });
    await service.approve(approval.id, 'bob');
    expect(await service.resume(approval.id, binding, details)).toMatchObject({ kind: 'run', approval: { id: approval.id } });
    const again = await service.resume(approval.id, binding, details);
    expect(again).toMatchObject({ kind: 'pending', created: true });
    expect(again.approval.id).not.toBe(approval.id);
    await expect(service.resume('apr_nope', binding, details)).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_NOT_FOUND' });
  });
});

describe('who may approve', () => {
  it('stores the merged rule options on the record', async () => {
    const { service } = setup({ groups: { ops: ['bob', 'carol'] } });
    const { approval } = await service.resolve(binding, withRules({ ttlMs: 120_000, approvers: ['group:ops'], quorum: 2, selfApprove: true }, { ttlMs: 90_000, selfApprove: false, onApprove: 'execute' }));
    expect(approval).toMatchObject({ approvers: ['group:ops'], approverGroups: { ops: ['bob', 'carol'] }, selfApprove: false, quorum: 2, onApprove: 'execute', votes: [] });
    expect(approval.expiresAt - approval.createdAt).toBe(90_000);
  });

  it('lets a listed principal or a member of a listed group approve, and refuses and audits anyone else', async () => {
    const { service, events } = setup({ groups: { ops: ['carol'] } });
    const { approval } = await service.resolve(binding, withRules({ approvers: ['bob', 'group:ops'] }));
    await expect(service.approve(approval.id, 'mallory')).rejects.toMatchObject({ code: 'GH_ERR_APPROVER_NOT_ALLOWED', data: { actor: 'mallory' } });
    await expect(service.deny(approval.id, 'mallory')).rejects.toMatchObject({ code: 'GH_ERR_APPROVER_NOT_ALLOWED' });
    expect((await service.get(approval.id))?.state).toBe('pending');
    expect((await service.approve(approval.id, 'carol')).state).toBe('approved');
    const refused = (await events()).filter((e) => e.type === 'approval.refused_approver');
    expect(refused.map((e) => `${e.actor}:${e.data.action}:${e.data.code}`)).toEqual(['mallory:approve:GH_ERR_APPROVER_NOT_ALLOWED', 'mallory:deny:GH_ERR_APPROVER_NOT_ALLOWED']);

    const other = await service.resolve({ ...binding, argsDigest: 'sha256:b' }, withRules({ approvers: ['bob', 'group:ops'] }));
    expect((await service.approve(other.approval.id, 'bob')).state).toBe('approved');
  });

  it('reads a group from the config when it has one, else from the record (a CLI with only --data-dir)', async () => {
    const gateway = setup({ groups: { ops: ['carol', 'dave'] } });
    const { approval } = await gateway.service.resolve(binding, withRules({ approvers: ['group:ops'] }));
    const cliWithoutConfig = setup({ dir: gateway.dir });
    const cliWithNewConfig = setup({ dir: gateway.dir, groups: { ops: ['carol'] } });
    await expect(cliWithNewConfig.service.approve(approval.id, 'dave')).rejects.toMatchObject({ code: 'GH_ERR_APPROVER_NOT_ALLOWED' });
    expect((await cliWithoutConfig.service.approve(approval.id, 'dave')).state).toBe('approved');
  });

  it('lets the requester approve their own call by default, and refuses it (but not a deny) when selfApprove is false', async () => {
    const { service, events } = setup();
    const own = await service.resolve(binding, details);
    expect(own.approval.selfApprove).toBe(true);
    expect((await service.approve(own.approval.id, 'alice')).state).toBe('approved');

    const strict = await service.resolve({ ...binding, argsDigest: 'sha256:b' }, withRules({ selfApprove: false }));
    await expect(service.approve(strict.approval.id, 'alice')).rejects.toMatchObject({ code: 'GH_ERR_SELF_APPROVAL_FORBIDDEN' });
    expect(service.mayAct(strict.approval, 'alice')).toMatchObject({ code: 'GH_ERR_SELF_APPROVAL_FORBIDDEN' });
    expect(service.mayAct(strict.approval, 'alice', 'deny')).toBeUndefined();
    expect((await events()).filter((e) => e.type === 'approval.refused_approver').map((e) => `${e.actor}:${e.data.code}`)).toEqual(['alice:GH_ERR_SELF_APPROVAL_FORBIDDEN']);
    expect((await service.deny(strict.approval.id, 'alice', 'never mind')).state).toBe('denied');
  });

  it('lets nobody approve when the rules name no approver in common, says so in the reason, and warns', async () => {
    const { service, warnings } = setup();
    const { approval } = await service.resolve(binding, withRules({ approvers: ['bob'] }, { approvers: ['carol'] }));
    expect(approval.approvers).toEqual([]);
    expect(approval.reason).toContain('nobody can approve');
    expect(warnings.join('\n')).toContain(approval.id);
    await expect(service.approve(approval.id, 'bob')).rejects.toMatchObject({ code: 'GH_ERR_APPROVER_NOT_ALLOWED' });
    await expect(service.approve(approval.id, 'carol')).rejects.toMatchObject({ code: 'GH_ERR_APPROVER_NOT_ALLOWED' });
    expect((await service.deny(approval.id, 'alice')).state).toBe('denied'); // the requester may still withdraw
  });
});

describe('quorum', () => {
  it('stays pending until enough distinct approvers approved; the same approver twice counts once', async () => {
    const { service, events } = setup();
    const { approval } = await service.resolve(binding, withRules({ quorum: 2 }));
    const first = await service.approve(approval.id, 'bob', 'fine');
    expect(first).toMatchObject({ state: 'pending', votes: [{ actor: 'bob', reason: 'fine' }] });
    expect(first.history.at(-1)).toMatchObject({ state: 'pending', actor: 'bob', vote: 'approve' });
    expect((await service.approve(approval.id, 'bob')).votes).toHaveLength(1);
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'pending', created: false });
    const second = await service.approve(approval.id, 'carol');
    expect(second).toMatchObject({ state: 'approved' });
    expect(second.votes.map((v) => v.actor)).toEqual(['bob', 'carol']);
    expect(typesAndActors(await events())).toEqual(['approval.created:alice', 'approval.vote:bob', 'approval.approved:carol']);
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'run' });
  });

  it('is denied by one allowed approver, whatever votes came before', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, withRules({ quorum: 3 }));
    await service.approve(approval.id, 'bob');
    expect((await service.deny(approval.id, 'carol', 'no')).state).toBe('denied');
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'denied' });
  });

  it('counts every vote when approvers act at once', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, withRules({ quorum: 4 }));
    await Promise.all(['b', 'c', 'd', 'b', 'c'].map((actor) => service.approve(approval.id, actor)));
    const record = (await service.get(approval.id))!;
    expect(record.state).toBe('pending');
    expect(record.votes.map((v) => v.actor).sort()).toEqual(['b', 'c', 'd']);
  });
});

describe('onApprove: execute', () => {
  const execute = () => withRules({ onApprove: 'execute' });

  it('lets the executor claim the approved call, hands its result to exactly one retry, then asks anew', async () => {
    const { service, events } = setup();
    const { approval } = await service.resolve(binding, execute());
    await service.approve(approval.id, 'bob');
    const claimed = await service.claimForExecution(approval.id, 'JX');
    expect(claimed).toMatchObject({ state: 'consumed', execution: { jobId: 'JX' }, claimedBy: { jobId: 'JX' } });
    expect(await service.claimForExecution(approval.id, 'JY')).toBeUndefined();
    expect(await service.claim(approval.id, 'JZ')).toBeUndefined();

    expect(await service.resolve(binding, { ...details, jobId: 'R1' })).toMatchObject({ kind: 'executing', approval: { id: approval.id } });
    await service.recordExecution(approval.id, { resultRef: 'res:JX' });
    const [a, b] = await Promise.all([service.resolve(binding, { ...details, jobId: 'R2' }), service.resolve(binding, { ...details, jobId: 'R3' })]);
    expect([a.kind, b.kind].sort()).toEqual(['pending', 'result']);
    const taken = a.kind === 'result' ? a : b;
    expect(taken).toMatchObject({ kind: 'result', execution: { resultRef: 'res:JX', takenBy: 'R2' } });
    expect(await service.takeResult(approval.id, 'R4')).toBeUndefined();
    expect(typesAndActors(await events())).toEqual(expect.arrayContaining(['approval.consumed:gatehouse', 'approval.executed:gatehouse', 'approval.result_taken:gatehouse']));
  });

  it('hands a failed execution to the retry as well', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, execute());
    await service.approve(approval.id, 'bob');
    await service.claimForExecution(approval.id, 'JX');
    await service.recordExecution(approval.id, { error: { code: 'GH_ERR_UPSTREAM_ERROR', message: 'boom' } });
    await expect(service.recordExecution(approval.id, { resultRef: 'res:JX' })).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_INVALID_STATE' });
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'result', execution: { error: { code: 'GH_ERR_UPSTREAM_ERROR' } } });
  });

  it('runs it for a retry that comes before the executor: whoever claims first runs it, once', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, execute());
    await service.approve(approval.id, 'bob');
    expect(await service.resolve(binding, details)).toMatchObject({ kind: 'run' });
    expect(await service.claimForExecution(approval.id, 'JX')).toBeUndefined();
  });

  it('refuses to execute an approval that waits for the retry', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, details);
    await service.approve(approval.id, 'bob');
    await expect(service.claimForExecution(approval.id, 'JX')).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_INVALID_STATE' });
    expect((await service.get(approval.id))?.state).toBe('approved');
  });

  it('wakes a waiter when the result is recorded', async () => {
    const { service } = setup();
    const { approval } = await service.resolve(binding, execute());
    await service.approve(approval.id, 'bob');
    await service.claimForExecution(approval.id, 'JX');
    const waiting = service.waitForResult(approval.id, 10_000);
    await service.recordExecution(approval.id, { resultRef: 'res:JX' });
    expect((await waiting).execution?.resultRef).toBe('res:JX');
  });
});
