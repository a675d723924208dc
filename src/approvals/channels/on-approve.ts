import type { ApprovalRecord } from '../../protocol/approval-record.ts';
import type { ApprovalService } from '../service.ts';
import type { Logger } from '../../log.ts';

/**
 * Per-rule `onApprove: execute`: when such an approval is granted and no call of this process is waiting on it,
 * the gateway runs the call itself, as its caller, and keeps the result for the one identical retry that asks.
 * Every replica watches; the atomic claim lets exactly one of them (or a retry that came first) run it.
 */
export class ExecuteOnApproval {
  private readonly running = new Set<string>();
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly approvals: ApprovalService,
    private readonly run: (approval: ApprovalRecord) => Promise<void>,
    private readonly isWaitedOn: (approvalId: string) => boolean,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.unwatch = this.approvals.watch((record) => this.consider(record));
    // Granted while no gateway was watching (a restart): their arguments may still be in a shared Store.
    void this.approvals.list('approved').then((records) => records.forEach((r) => this.consider(r)), () => undefined);
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  private consider(record: ApprovalRecord): void {
    if (record.state !== 'approved' || record.onApprove !== 'execute' || !record.argsRef || record.execution) return;
    if (this.running.has(record.id) || this.isWaitedOn(record.id)) return;
    this.running.add(record.id);
    this.run(record)
      .catch((err: Error) => this.log.error('could not run an approved call on approval', { approvalId: record.id, jobId: record.jobId, error: err.message }))
      .finally(() => this.running.delete(record.id));
  }
}
