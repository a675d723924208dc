import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApprovalService, type ApprovalBinding } from '../../src/approvals/service.ts';
import { AuditTrail } from '../../src/audit/trail.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { FileApprovalStore } from '../../adapters/memory/approval-store.ts';
import { FileAuditStore } from '../../adapters/memory/audit-store.ts';
import type { Clock } from '../../src/ports.ts';

const TTL = 60_000;
const binding: ApprovalBinding = { tenant: 't', principal: 'alice', server: 'fx', tool: 'fx__write', argsDigest: 'sha256:a', toolDigest: 'sha256:t', policySnapshot: 'sha256:p' };
const details = { jobId: 'J', ruleIds: ['r'], reason: 'destructive', argsPreview: '{}' };

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'gh-apr-'));
  let now = 1_000_000;
  const clock: Clock = { now: () => now, sleep: async () => undefined };
  const auditStore = new FileAuditStore(dir);
  const audit = new AuditTrail(new ChainWriter(auditStore), { flushIntervalMs: 0 });
  const service = new ApprovalService(new FileApprovalStore(dir), audit, clock, TTL);
  return { service, audit, auditStore, advance: (ms: number) => (now += ms) };
}

describe('approval lifecycle (manual clock)', () => {
  it('shares one pending approval between identical calls, and binds to every field', async () => {
    const { service } = setup();
    const first = await service.resolve(binding, details);
    const second = await service.resolve(binding, details);
    expect(first).toMatchObject({ kind: 'pending', created: true });
    expect(second).toMatchObject({ kind: 'pending', created: false, approval: { id: first.approval.id } });
    const otherSnapshot = await service.resolve({ ...binding, policySnapshot: 'sha256:q' }, details);
    expect(otherSnapshot.approval.id).not.toBe(first.approval.id);
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
    const { service, audit, auditStore } = setup();
    const { approval } = await service.resolve(binding, details);
    await service.deny(approval.id, 'carol');
    await expect(service.approve(approval.id, 'bob')).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_INVALID_STATE' });
    await audit.flush();
    const events = [];
    for await (const r of auditStore.read('t')) events.push(`${r.type}:${r.actor}`);
    expect(events).toEqual(['approval.created:alice', 'approval.denied:carol']);
  });
});
