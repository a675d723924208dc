import { describe, expect, it } from 'vitest';
import { noticeOf } from '../../src/approvals/notifications.ts';
import { approvalArguments } from '../../src/approvals/preview.ts';
import { slackMessageOf } from '../../src/approvals/slack-message.ts';
import type { ApprovalRecord } from '../../src/protocol/approval-record.ts';

// Tool names, reasons and arguments come from outside: in a Slack message they must stay text, never become a
// mention (<!channel>), a link (<https://evil|Approve>) or a layout change.
const record = {
  id: 'apr_1',
  tenant: 'default',
  principal: 'agent <!channel>',
  server: 'fx',
  tool: 'fx__write',
  reason: 'urgent <https://evil.example|Approve here> & now',
  expiresAt: Date.parse('2026-12-05T03:40:00Z'),
  createdAt: 0,
  state: 'pending',
  history: [{ state: 'pending', at: 0, actor: 'agent' }],
  ...approvalArguments({ path: '<@U123> /etc/passwd', token: 'sk-live-0123456789abcdef0123' }),
} as unknown as ApprovalRecord;

describe('the Slack message of a notice', () => {
  it('escapes every outside value and never carries a secret argument', () => {
    const notice = noticeOf(record, 'approval.created', record.history[0], 'https://gh.example/approvals/apr_1', { approve: 'https://gh.example/a', deny: 'https://gh.example/d' });
    const message = slackMessageOf(record, notice);
    const text = JSON.stringify(message);
    for (const raw of ['<!channel>', '<https://evil', '<@U123>']) expect(text).not.toContain(raw);
    expect(text).toContain('agent &lt;!channel&gt;');
    expect(text).toContain('urgent &lt;https://evil.example|Approve here&gt; &amp; now');
    expect(text).not.toContain('sk-live');
  });

  it('gives a settled notice its line and the page button only', () => {
    const step = { state: 'denied' as const, at: 1, actor: 'alice' };
    const message = slackMessageOf(record, noticeOf(record, 'approval.denied', step, 'https://gh.example/approvals/apr_1'));
    expect(message.blocks).toEqual([
      { type: 'section', text: { type: 'mrkdwn', text: message.text } },
      { type: 'actions', elements: [{ type: 'button', action_id: 'open', text: { type: 'plain_text', text: 'Open the approval' }, url: 'https://gh.example/approvals/apr_1' }] },
    ]);
  });
});
