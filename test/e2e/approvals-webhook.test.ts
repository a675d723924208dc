import { afterEach, describe, expect, it } from 'vitest';
import { WebhookNotifier } from '../../adapters/http/webhook.ts';
import type { ApprovalNotice } from '../../src/protocol/approval-notice.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { api, approverAuth, connectWithKey, heldWrite, KEYS, pendingApproval, resultText } from '../helpers/approvers.ts';
import { deadUrl, webhookReceiver } from '../helpers/webhook-receiver.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

const notice = (id = 'apr_1'): ApprovalNotice => ({
  text: `Approval needed: agent wants to run fx__write on fx (tenant default): the tool is marked destructive. http://gh/approvals/${id}`,
  event: 'approval.created',
  approval: { id, state: 'pending', tenant: 'default', principal: 'agent', server: 'fx', tool: 'fx__write', reason: 'the tool is marked destructive', expiresAt: new Date(0).toISOString() },
});

/** Small delays in place of the real 1 s, 2 s, 4 s …: the schedule, not the wall clock, is what is tested. */
function notifier(url: string, options: Partial<ConstructorParameters<typeof WebhookNotifier>[0]> = {}) {
  const log = recordingLogger();
  const webhook = new WebhookNotifier({ url, headers: { authorization: 'Bearer hook-secret' }, baseDelayMs: 5, timeoutMs: 1000, random: () => 0.5, ...options }, log);
  cleanups.push(() => webhook.close());
  return { webhook, log };
}

async function receiver(answer?: Parameters<typeof webhookReceiver>[0]) {
  const r = await webhookReceiver(answer);
  cleanups.push(() => r.close());
  return r;
}

describe('the approvals webhook', () => {
  it('POSTs the notice as JSON with the configured headers, retrying failed tries with backoff', async () => {
    const r = await receiver((n) => (n <= 2 ? 503 : 200));
    const { webhook, log } = notifier(r.url);
    webhook.notify(notice());
    await waitFor(() => r.received.length === 3, 'the third try');
    expect(r.received.map((x) => x.body)).toEqual([notice(), notice(), notice()]);
    expect(r.received[0].headers).toMatchObject({ 'content-type': 'application/json', authorization: 'Bearer hook-secret' });
    // Notices go out one after another: once the next one arrives, the first is done with, tried no more.
    webhook.notify(notice('apr_next'));
    await waitFor(() => r.received.length === 4, 'the next notice');
    expect(r.received.map((x) => x.body.approval.id)).toEqual(['apr_1', 'apr_1', 'apr_1', 'apr_next']);
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('gives up after the last try, logs it without the secret path, and goes on with the next notice', async () => {
    const url = await deadUrl();
    const { webhook, log } = notifier(url, { attempts: 3 });
    webhook.notify(notice('apr_1'));
    webhook.notify(notice('apr_2'));
    expect(log.lines).toEqual([]); // notify only queues: no delivery has been tried, let alone failed, yet
    await waitFor(() => log.lines.length === 2, 'both notices to fail');
    expect(log.lines.map((l) => l.fields?.approvalId)).toEqual(['apr_1', 'apr_2']);
    expect(log.lines[0]).toMatchObject({ level: 'warn', fields: { to: new URL(url).origin } });
    expect(JSON.stringify(log.lines)).not.toContain('secret-token');
  });

  it('does not retry a notice the receiver refuses (4xx), but does retry 429 and a try that times out', async () => {
    const refusing = await receiver(() => 400);
    const first = notifier(refusing.url);
    first.webhook.notify(notice());
    await waitFor(() => first.log.lines.length === 1, 'the refusal to be logged');
    expect(refusing.received).toHaveLength(1);

    const busy = await receiver((n) => (n === 1 ? 429 : n === 2 ? 'hang' : 204));
    // Long enough that an answered try never times out on a loaded machine; the hung one still does.
    const second = notifier(busy.url, { timeoutMs: 500 });
    second.webhook.notify(notice());
    await waitFor(() => busy.received.length === 3, 'the third try');
    second.webhook.notify(notice('apr_next')); // once it arrives, the first notice is done with
    await waitFor(() => busy.received.length === 4, 'the next notice');
    expect(busy.received.map((x) => x.body.approval.id)).toEqual(['apr_1', 'apr_1', 'apr_1', 'apr_next']);
    expect(second.log.lines).toEqual([]);
  });

  it('keeps a bounded queue: past it the oldest notice is dropped, with a warning', async () => {
    const r = await receiver((n) => (n === 1 ? 'hang' : 200));
    const { webhook, log } = notifier(r.url, { maxQueue: 2, timeoutMs: 200, attempts: 1 });
    for (const id of ['apr_1', 'apr_2', 'apr_3', 'apr_4']) webhook.notify(notice(id));
    await waitFor(() => r.received.length === 3, 'the queue to drain');
    expect(r.received.map((x) => x.body.approval.id)).toEqual(['apr_1', 'apr_3', 'apr_4']);
    expect(log.lines.find((l) => l.msg.includes('queue full'))?.fields?.approvalId).toBe('apr_2');
  });

  it('backs off exponentially with jitter, up to the cap', async () => {
    const r = await receiver(() => 500);
    const waits: number[] = [];
    const sleep = async (ms: number) => void waits.push(ms);
    const jitter = [0, 0.99, 0.5, 0.5, 0.5];
    const { webhook, log } = notifier(r.url, { attempts: 6, baseDelayMs: 1000, maxDelayMs: 8000, random: () => jitter[waits.length] ?? 0.5, sleep });
    webhook.notify(notice());
    await waitFor(() => log.lines.length === 1, 'the last try to fail');
    expect(r.received).toHaveLength(6);
    // 1 s, 2 s, 4 s, 8 s, 8 s (the cap), each jittered by a factor in [0.5, 1.5).
    expect(waits.map(Math.round)).toEqual([500, 2980, 4000, 8000, 8000]);
  });
});

describe('approval notices from a running gateway', () => {
  async function harness(webhookUrl: string): Promise<Harness> {
    const h = await startHarness({ auth: approverAuth, approvals: { ...defaultConfig().approvals, publicUrl: 'https://gatehouse.example.com/', webhook: { url: webhookUrl, headers: { 'x-hook': 'yes' }, format: 'plain', links: true, actAs: 'webhook' } } });
    cleanups.push(() => h.close());
    return h;
  }

  it('sends approval.created and approval.approved, with the page URL and without the arguments', async () => {
    const r = await receiver();
    const h = await harness(r.url);
    const client = await connectWithKey(h.url, KEYS.caller);
    cleanups.unshift(() => client.close());
    const held = heldWrite(client, { key: 'k', value: 'SECRET-ARGUMENT-VALUE' });
    const approval = await pendingApproval(h);
    await waitFor(() => r.received.length === 1, 'the created notice');
    await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver, body: { reason: 'ok <b>' } });
    expect(resultText(await held)).toBe('wrote k');
    await waitFor(() => r.received.length === 2, 'the approved notice');
    // The file watcher sees the same changes again: a second notice of them would come before one about a later
    // approval.
    await client.callTool({ name: 'fx__write', arguments: { key: 'later', value: 'v' } });
    await waitFor(() => r.received.some((x) => x.body.approval.id !== approval.id), 'a notice about a later approval');
    expect(r.received.filter((x) => x.body.approval.id === approval.id).map((x) => x.body.event)).toEqual(['approval.created', 'approval.approved']);

    const [created, approved] = r.received.map((x) => x.body);
    const url = `https://gatehouse.example.com/approvals/${approval.id}`;
    expect(r.received[0].headers['x-hook']).toBe('yes');
    const actions = { approve: expect.stringMatching(new RegExp(`^${url}/link\\?token=approve\\.`)), deny: expect.stringMatching(new RegExp(`^${url}/link\\?token=deny\\.`)) };
    expect(created.approval).toEqual({ id: approval.id, state: 'pending', tenant: 'default', principal: 'agent', server: 'fx', tool: 'fx__write', reason: approval.reason, expiresAt: new Date(approval.expiresAt).toISOString(), url, actions });
    expect(created.text).toBe(`Approval needed: agent wants to run fx__write on fx (tenant default): the tool is marked destructive. ${url} Approve: ${created.approval.actions.approve} Deny: ${created.approval.actions.deny}`);
    expect(approved.approval.state).toBe('approved');
    expect(approved.text).toBe(`Approved by alice: fx__write for agent (tenant default) (ok &lt;b&gt;). ${url}`);
    expect(JSON.stringify(r.received)).not.toContain('SECRET-ARGUMENT-VALUE');
    expect(JSON.stringify(r.received)).not.toContain('argsPreview');
  });

  it('sends approval.denied, and approval.cancelled when the client gives up', async () => {
    const r = await receiver();
    const h = await harness(r.url);
    const client = await connectWithKey(h.url, KEYS.caller);
    cleanups.unshift(() => client.close());
    const held = heldWrite(client);
    const first = await pendingApproval(h);
    await api(h, `/api/approvals/${first.id}/deny`, { method: 'POST', key: KEYS.approver });
    await held;

    const controller = new AbortController();
    const cancelled = client.callTool({ name: 'fx__write', arguments: { key: 'other', value: 'v' } }, { onprogress: () => undefined, signal: controller.signal } as never);
    await waitFor(async () => (await h.gateway.approvals.list('pending')).length === 1, 'the second approval');
    controller.abort();
    await cancelled.catch(() => undefined);
    await waitFor(() => r.received.length === 4, 'four notices');
    expect(r.received.map((x) => x.body.event).sort()).toEqual(['approval.cancelled', 'approval.created', 'approval.created', 'approval.denied']);
  });

  it('keeps approvals working when the webhook endpoint is down', async () => {
    const h = await harness(await deadUrl());
    const client = await connectWithKey(h.url, KEYS.caller);
    cleanups.unshift(() => client.close());
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    expect((await api(h, `/api/approvals/${approval.id}/approve`, { method: 'POST', key: KEYS.approver })).status).toBe(200);
    expect(resultText(await held)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    expect((await h.gateway.approvals.get(approval.id))?.state).toBe('consumed');
  });
});
