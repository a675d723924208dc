import type { ApprovalState } from './approval-record.ts';

/** The moments people hear about: an approval to decide, and how it was settled. */
export type ApprovalEvent = 'approval.created' | 'approval.approved' | 'approval.denied' | 'approval.expired' | 'approval.cancelled';

/**
 * What a notifier sends (the webhook's JSON body). Never the arguments: not even the redacted preview, since a
 * chat channel is read by more people than the approvers.
 */
export interface ApprovalNotice {
  /** One line for humans, Slack-compatible (`&`, `<`, `>` escaped), with the approval page's URL. */
  text: string;
  event: ApprovalEvent;
  approval: {
    id: string;
    state: ApprovalState;
    tenant: string;
    principal: string;
    server: string;
    tool: string;
    reason: string;
    /** ISO 8601. */
    expiresAt: string;
    url?: string;
    /** On `approval.created`, with a page URL and `approvals.webhook.links` on: the one-use approve and deny links. */
    actions?: { approve: string; deny: string };
  };
  /**
   * What the webhook POSTs instead of this notice, when `approvals.webhook.format` asks for another shape (`slack`:
   * `{ text, blocks }`). Not itself sent.
   */
  payload?: Record<string, unknown>;
}
