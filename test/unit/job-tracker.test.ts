import { describe, expect, it } from 'vitest';
import { JobTracker } from '../../src/scheduler/job-tracker.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import { coded } from '../helpers/coded-errors.ts';

function setup() {
  const events: AuditEvent[] = [];
  const audit = { record: (e: AuditEvent) => events.push(e) } as unknown as AuditTrail;
  return { tracker: new JobTracker(audit, { now: () => 5, sleep: async () => undefined }), events };
}

describe('job state machine', () => {
  it('moves forward and writes one audit event per transition', () => {
    const { tracker, events } = setup();
    tracker.submit('J', 't', 'alice', { tool: 'x' });
    tracker.note('J', 'job.decided', 'kernel', { effect: 'allow' });
    tracker.move('J', 'DISPATCHED', 'scheduler');
    tracker.move('J', 'SUCCEEDED', 'worker');
    expect(events.map((e) => e.type)).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.succeeded']);
    expect(events.every((e) => e.jobId === 'J' && e.tenant === 't')).toBe(true);
  });

  it('refuses to move backwards', () => {
    const { tracker } = setup();
    tracker.submit('J', 't', 'alice', {});
    tracker.move('J', 'DISPATCHED', 'scheduler');
    expect(() => tracker.move('J', 'APPROVAL_REQUIRED', 'kernel')).toThrow(coded('GH_ERR_INTERNAL', { jobId: 'J', from: 'DISPATCHED', to: 'APPROVAL_REQUIRED' }));
  });

  it('lets DENIED and CANCELLED end any live state, and ignores a result for a job that already ended', () => {
    const { tracker, events } = setup();
    tracker.submit('J', 't', 'alice', {});
    tracker.move('J', 'APPROVAL_REQUIRED', 'kernel');
    expect(tracker.move('J', 'CANCELLED', 'alice')).toBe(true);
    expect(tracker.move('J', 'SUCCEEDED', 'late-worker')).toBe(false);
    expect(events.map((e) => e.type)).toEqual(['job.submitted', 'job.approval_required', 'job.cancelled']);
  });
});
