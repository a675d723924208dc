import type { ApprovalNotice } from '../protocol/approval-notice.ts';
import type { ApprovalRecord } from '../protocol/approval-record.ts';
import { argsSummaryOf } from './preview.ts';

/** Slack's limit on one text object of a block. */
const MAX_TEXT = 3000;

/**
 * A notice as a Slack message (`approvals.webhook.format: slack`): `text` for the notification itself, and
 * `blocks`: a section saying who asks to run what, why, and the one-line argument summary (never the arguments),
 * then Approve and Deny buttons that open the notice's action links (URL buttons: Slack only opens them; the
 * link's page asks once more before anything happens), and the approval's page.
 */
export function slackMessageOf(record: ApprovalRecord, notice: ApprovalNotice): { text: string; blocks: Record<string, unknown>[] } {
  const { approval } = notice;
  const blocks: Record<string, unknown>[] = [];
  if (notice.event === 'approval.created') {
    blocks.push(section(`*Approval needed*: ${escapeSlack(record.principal)} wants to run \`${escapeSlack(record.tool)}\` on ${escapeSlack(record.server)} (tenant ${escapeSlack(record.tenant)})`));
    blocks.push({
      type: 'section',
      fields: [mrkdwn(`*Reason*\n${escapeSlack(record.reason)}`), mrkdwn(`*Arguments*\n${escapeSlack(argsSummaryOf(record)) || '(none)'}`), mrkdwn(`*Expires*\n<!date^${Math.floor(record.expiresAt / 1000)}^{date_short_pretty} {time}|${approval.expiresAt}>`)],
    });
  } else {
    blocks.push(section(notice.text));
  }
  const buttons = [
    ...(approval.actions ? [button('approve', 'Approve', approval.actions.approve, 'primary'), button('deny', 'Deny', approval.actions.deny, 'danger')] : []),
    ...(approval.url ? [button('open', 'Open the approval', approval.url)] : []),
  ];
  if (buttons.length > 0) blocks.push({ type: 'actions', elements: buttons });
  return { text: notice.text, blocks };
}

/** One line, with Slack's three control characters escaped: tool names and reasons come from outside. */
export function escapeSlack(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function section(text: string): Record<string, unknown> {
  return { type: 'section', text: mrkdwn(text) };
}

function mrkdwn(text: string): { type: 'mrkdwn'; text: string } {
  return { type: 'mrkdwn', text: text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text };
}

function button(id: string, label: string, url: string, style?: 'primary' | 'danger'): Record<string, unknown> {
  return { type: 'button', action_id: id, text: { type: 'plain_text', text: label }, url, ...(style ? { style } : {}) };
}
