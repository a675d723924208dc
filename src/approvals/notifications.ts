import type { ApprovalStore, Clock, Notifier, Store } from '../ports.ts';
import type { ApprovalEvent, ApprovalNotice } from '../protocol/approval-notice.ts';
import type { ApprovalRecord, ApprovalState, ApprovalTransition } from '../protocol/approval-record.ts';
import type { ActionLinks } from './action-links.ts';
import { escapeSlack, slackMessageOf } from './slack-message.ts';

export interface ApprovalNotificationsOptions {
  clock: Clock;
  /** The approval page of an id, when the gateway serves pages. */
  pageUrl?: (id: string) => string | undefined;
  /** The approve and deny links an `approval.created` notice carries (none without them). */
  links?: Pick<ActionLinks, 'linksOf'>;
  /** `approvals.webhook.format`: `plain` sends the notice itself, `slack` a Slack message (`{ text, blocks }`). */
  format?: 'plain' | 'slack';
}

const SETTLED: ReadonlySet<ApprovalState> = new Set(['approved', 'denied', 'expired', 'cancelled']);
/** Changes older than this when we start are not news: a restart must not announce every pending approval again. */
const STARTUP_GRACE_MS = 10_000;
/** How long a sent notice is remembered, so the same transition seen twice (locally, then by fs.watch) is sent once. */
const SENT_TTL_MS = 24 * 60 * 60_000;

/**
 * Turns approval changes into notices. It watches the approval store, so it hears of every change, whoever made
 * it (this gateway, the CLI in another process, another replica), and reads the events off each record's history,
 * so a change seen late (approved then consumed before we looked) still yields each notice. Each notice is claimed
 * once in the shared Store, so replicas watching the same approvals do not send it twice.
 */
export class ApprovalNotifications {
  private unwatch: (() => void) | undefined;
  private startedAt = 0;

  constructor(
    private readonly approvals: ApprovalStore,
    private readonly claims: Store,
    private readonly notifier: Notifier,
    private readonly options: ApprovalNotificationsOptions,
  ) {}

  start(): void {
    this.startedAt = this.options.clock.now();
    this.unwatch ??= this.approvals.watch((record) => void this.seen(record).catch(() => undefined));
  }

  async close(): Promise<void> {
    this.unwatch?.();
    this.unwatch = undefined;
    await this.notifier.close();
  }

  private async seen(record: ApprovalRecord): Promise<void> {
    const cutoff = this.startedAt - STARTUP_GRACE_MS;
    for (const [index, step] of record.history.entries()) {
      const event = index === 0 ? 'approval.created' : SETTLED.has(step.state) ? (`approval.${step.state}` as ApprovalEvent) : undefined;
      if (!event || step.at < cutoff) continue;
      if (!(await this.claims.setIfAbsent(`notice:${record.id}:${event}`, true, { ttlMs: SENT_TTL_MS }))) continue;
      // A link that cannot be signed (the data dir's key unreadable) leaves the notice without links, not unsent.
      const actions = event === 'approval.created' ? await this.options.links?.linksOf(record.id).catch(() => undefined) : undefined;
      const notice = noticeOf(record, event, step, this.options.pageUrl?.(record.id), actions);
      this.notifier.notify(this.options.format === 'slack' ? { ...notice, payload: slackMessageOf(record, notice) } : notice);
    }
  }
}

/** The notice of one step of an approval's history; `state` is the one that step reached. */
export function noticeOf(record: ApprovalRecord, event: ApprovalEvent, step: ApprovalTransition, url: string | undefined, actions?: ApprovalNotice['approval']['actions']): ApprovalNotice {
  const what = `${record.tool} for ${record.principal} (tenant ${record.tenant})`;
  const line =
    event === 'approval.created'
      ? `Approval needed: ${record.principal} wants to run ${record.tool} on ${record.server} (tenant ${record.tenant}): ${record.reason}.`
      : event === 'approval.expired'
        ? `Expired without a decision: ${what}.`
        : `${event === 'approval.approved' ? 'Approved' : event === 'approval.denied' ? 'Denied' : 'Withdrawn'} by ${step.actor}${step.via === 'link' ? ' (by link)' : ''}: ${what}${step.reason ? ` (${step.reason})` : ''}.`;
  return {
    text: `${escapeSlack(line)} ${url ?? record.id}${actions ? ` Approve: ${actions.approve} Deny: ${actions.deny}` : ''}`,
    event,
    approval: {
      id: record.id,
      state: step.state,
      tenant: record.tenant,
      principal: record.principal,
      server: record.server,
      tool: record.tool,
      reason: record.reason,
      expiresAt: new Date(record.expiresAt).toISOString(),
      ...(url ? { url } : {}),
      ...(actions ? { actions } : {}),
    },
  };
}
