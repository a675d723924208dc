import type { ApprovalRecord } from '../../protocol/approval-record.ts';
import type { ApprovalService } from '../service.ts';
import type { ReplyChannel } from '../../protocol/call.ts';

/** A budget that lets the approval's own expiry end the wait (the longest a Node timer waits). */
export const UNTIL_EXPIRY_MS = 2_147_483_647;

export interface HoldOptions {
  budgetMs: number;
  /** How often progress goes out while holding (ms). */
  everyMs: number;
  /** The progress message: who approves and where. */
  message: string;
  /** Stops the hold early besides the client's own cancellation. */
  signal?: AbortSignal;
}

/**
 * Holds the request open until the approval leaves `pending`, the budget runs out or the client cancels, and
 * returns the approval as it then is. A client that sent a progress token hears from us every `everyMs`, which
 * also keeps clients that reset their timeout on progress from giving up.
 */
export function holdForApproval(approvals: ApprovalService, approvalId: string, reply: ReplyChannel, options: HoldOptions): Promise<ApprovalRecord> {
  const token = reply.progressToken;
  let ticks = 0;
  const tick =
    token === undefined
      ? undefined
      : () => {
          ticks++;
          reply.notify('notifications/progress', { progressToken: token, progress: ticks, message: options.message });
        };
  tick?.();
  const signal = options.signal ? AbortSignal.any([reply.signal, options.signal]) : reply.signal;
  return approvals.waitForSettled(approvalId, options.budgetMs, { signal, tickMs: options.everyMs, ...(tick ? { onTick: tick } : {}) });
}
