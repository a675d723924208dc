// The approval channel ladder, driven by real SDK v2 clients over HTTP: each kind of client (none, progress only,
// form elicitation, URL elicitation, 2026-07-28) through approve, deny, expire, cancel and the retry after
// approval, with exactly-once execution counted in the fixture upstream's side effects.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { CancelTaskResultSchema, CreateTaskResultSchema, GetTaskPayloadResultSchema, GetTaskResultSchema } from '@modelcontextprotocol/core';
import { AdvancingClock, connectHttp, startHarness, TEST_DECISION_BUDGET_MS, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { approverAuth, connectWithKey, KEYS } from '../helpers/approvers.ts';
import type { ApprovalRecord } from '../../src/protocol/approval-record.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import type { GatehouseConfig } from '../../src/config/schema.ts';

const harnesses: Harness[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

interface Setup {
  /** `approval:` options of the write rule (a version 2 policy), e.g. `{ onApprove: execute }`. */
  approval?: string;
  config?: Partial<GatehouseConfig>;
}

type ChannelHarness = Harness & { policyFile: string; clock: AdvancingClock };

/** A gateway whose policy lets everything run but `fx__write`, which needs a human; its clock can be moved on. */
async function harness(setup: Setup = {}): Promise<ChannelHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-channels-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, writePolicy(setup.approval));
  const clock = new AdvancingClock();
  const h = await startHarness({ policies: [policyFile], kernel: { decisionBudget: TEST_DECISION_BUDGET_MS, watchPolicies: false }, ...setup.config }, { clock });
  harnesses.push(h);
  return Object.assign(h, { policyFile, clock });
}

/**
 * The approvals' default lifetime (15 minutes) passes: the gateway's clock moves past it and its expiry sweep runs,
 * as its timer would. Tests that expire an approval do it this way, so that nothing before it races a short TTL.
 */
async function outliveApprovals(h: ChannelHarness): Promise<void> {
  h.clock.advance(h.gateway.config.approvals.ttl + 1);
  await h.gateway.approvals.expireDue();
}

function writePolicy(approval?: string, effect = 'require_approval'): string {
  return [
    'version: 2',
    'default: allow',
    'rules:',
    `  - { id: writes-need-a-human, match: { tools: [fx__write] }, effect: ${effect}, reason: writes change data${approval ? `, approval: ${approval}` : ''} }`,
    '',
  ].join('\n');
}

async function connect(url: string, era: 'legacy' | 'modern', capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = await connectHttp(url, era, capabilities);
  clients.push(client);
  return client;
}

type Result = { isError?: boolean; content: unknown; _meta?: Record<string, unknown>; structuredContent?: Record<string, unknown> };
const write = { name: 'fx__write', arguments: { key: 'k', value: 'v' } };
const text = (result: Result): string => (result.content as { text: string }[])[0].text;
const code = (result: Result): string | undefined => (result._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code;
const approvalOf = (result: Result): { id: string; url?: string } => result._meta?.['gatehouse/approval'] as { id: string; url?: string };

async function pending(h: Harness): Promise<ApprovalRecord> {
  await waitFor(async () => (await h.gateway.approvals.list('pending')).length > 0, 'a pending approval');
  return (await h.gateway.approvals.list('pending'))[0];
}

async function stateOf(h: Harness, id: string): Promise<string | undefined> {
  return (await h.gateway.approvals.get(id))?.state;
}

/** The channels recorded on `job.approval_required`, in order. */
async function channels(h: Harness): Promise<string[]> {
  await h.gateway.audit.flush();
  const lines = readFileSync(join(h.dataDir, 'audit', 'default.jsonl'), 'utf8').trim().split('\n');
  return lines.map((l) => JSON.parse(l) as AuditRecord).filter((r) => r.type === 'job.approval_required').map((r) => String(r.data.channel));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a client that declares nothing: the pending result, then an identical retry', () => {
  it('approve: the retry after approval runs exactly once, and a further retry asks anew', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy');
    const first = (await client.callTool(write)) as Result;
    expect(code(first)).toBe('GH_ERR_APPROVAL_PENDING');
    const { id, url } = approvalOf(first);
    expect(url).toMatch(new RegExp(`/approvals/${id}$`));
    expect(text(first)).toContain(url!);
    expect(text(first)).toContain('gatehouse_approval_wait');
    await h.gateway.approvals.approve(id, 'bob');
    expect(h.writes()).toBe(0); // granted after the client gave up: it does not run by itself
    expect(text((await client.callTool(write)) as Result)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    expect(code((await client.callTool(write)) as Result)).toBe('GH_ERR_APPROVAL_PENDING');
    expect(h.writes()).toBe(1);
    expect(await channels(h)).toEqual(['pending', 'pending']);
  });

  it('deny, expire and withdraw end the call without running it', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy');
    const denied = approvalOf((await client.callTool(write)) as Result).id;
    await h.gateway.approvals.deny(denied, 'bob', 'not now');
    expect(code((await client.callTool(write)) as Result)).toBe('GH_ERR_APPROVAL_DENIED');

    const other = { name: 'fx__write', arguments: { key: 'k2', value: 'v' } };
    approvalOf((await client.callTool(other)) as Result);
    h.clock.advance(h.gateway.config.approvals.ttl + 1); // read on the retry, before any sweep
    expect(code((await client.callTool(other)) as Result)).toBe('GH_ERR_APPROVAL_EXPIRED');

    const third = { name: 'fx__write', arguments: { key: 'k3', value: 'v' } };
    const withdrawn = approvalOf((await client.callTool(third)) as Result).id;
    await h.gateway.approvals.cancel(withdrawn, 'tester', 'changed my mind');
    expect(code((await client.callTool(third)) as Result)).toBe('GH_ERR_APPROVAL_PENDING'); // a new approval
    expect(h.writes()).toBe(0);
  });
});

describe('a client that sent a progress token: the call is held, with progress naming the page', () => {
  const held = (client: Client, progress: string[] = [], signal?: AbortSignal) =>
    client.callTool(write, { onprogress: (p: { message?: string }) => progress.push(p.message ?? ''), ...(signal ? { signal } : {}) } as never) as Promise<Result>;

  it('approve: the held call completes once, and its progress says who approves where', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy');
    const progress: string[] = [];
    const call = held(client, progress);
    const approval = await pending(h);
    await waitFor(() => progress.length > 0, 'progress');
    expect(progress[0]).toMatch(new RegExp(`^Waiting for approval ${approval.id} by an approver; approve at http://.+/approvals/${approval.id}$`));
    await h.gateway.approvals.approve(approval.id, 'bob');
    expect(text(await call)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    expect(await channels(h)).toEqual(['hold']);
  });

  it('deny and expire end the held call', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy');
    const denied = held(client);
    await h.gateway.approvals.deny((await pending(h)).id, 'bob');
    expect(code(await denied)).toBe('GH_ERR_APPROVAL_DENIED');
    const progress: string[] = [];
    const expired = client.callTool({ name: 'fx__write', arguments: { key: 'k2', value: 'v' } }, { onprogress: (p: { message?: string }) => progress.push(p.message ?? '') } as never) as Promise<Result>;
    await pending(h); // the earlier ones are settled: this is the new call's
    await waitFor(() => progress.length > 0, 'the call to be held');
    await outliveApprovals(h);
    expect(code(await expired)).toBe('GH_ERR_APPROVAL_EXPIRED');
    expect(h.writes()).toBe(0);
  });

  it('cancel: the client giving up withdraws the approval, and a later grant runs nothing', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy');
    const controller = new AbortController();
    const call = held(client, [], controller.signal);
    const approval = await pending(h);
    controller.abort('changed my mind');
    await expect(call).rejects.toBeDefined();
    await waitFor(async () => (await stateOf(h, approval.id)) === 'cancelled', 'the approval to be withdrawn');
    await expect(h.gateway.approvals.approve(approval.id, 'bob')).rejects.toMatchObject({ code: 'GH_ERR_APPROVAL_INVALID_STATE' });
    expect(h.writes()).toBe(0);
  });

  it("a hold that runs out of the client's budget (holdBudgetByClient) gives the pending result; the retry after approval runs once", async () => {
    const h = await harness({ config: { approvals: { ttl: 60_000, holdBudget: 45_000, holdBudgetByClient: { 'test-legacy': 200 }, groups: {} } } });
    const client = await connect(h.url, 'legacy');
    const first = await held(client);
    expect(code(first)).toBe('GH_ERR_APPROVAL_PENDING');
    await h.gateway.approvals.approve(approvalOf(first).id, 'bob');
    expect(h.writes()).toBe(0);
    expect(text(await held(client))).toBe('wrote k');
    expect(h.writes()).toBe(1);
  });
});

type ElicitParams = { mode?: string; message: string; url?: string; elicitationId?: string; requestedSchema?: unknown };

/** Answers the gateway's elicitations with `answer` (or never, if it returns a promise that never settles). */
function onElicit(client: Client, answer: (params: ElicitParams) => unknown | Promise<unknown>): ElicitParams[] {
  const seen: ElicitParams[] = [];
  client.setRequestHandler('elicitation/create' as never, (async (request: { params: ElicitParams }) => {
    seen.push(request.params);
    return answer(request.params);
  }) as never);
  return seen;
}
const never = () => new Promise<never>(() => undefined);

describe('a 2025 client with form elicitation only, where the caller may approve: a confirm form', () => {
  const form = { elicitation: { form: {} } };

  it('approve: accept + confirm approves as the caller and runs the call once; the form shows tool, arguments, rules and reason', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy', form);
    const seen = onElicit(client, () => ({ action: 'accept', content: { confirm: true } }));
    expect(text((await client.callTool({ name: 'fx__write', arguments: { key: 'k', value: 'v', password: 'hunter2' } })) as Result)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    expect(seen[0].mode).toBe('form');
    expect(seen[0].message).toContain('fx__write');
    expect(seen[0].message).toContain('writes-need-a-human');
    expect(seen[0].message).toContain('writes change data');
    expect(seen[0].message).toContain('"key":"k"');
    expect(seen[0].message).not.toContain('hunter2');
    const [approval] = await h.gateway.approvals.list('consumed');
    expect(approval.votes.map((v) => v.actor)).toEqual(['tester']);
    expect(await channels(h)).toEqual(['form_elicitation']);
  });

  it('deny: decline denies the approval and ends the call; cancel withdraws it', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy', form);
    let action = 'decline';
    onElicit(client, () => ({ action }));
    const declined = (await client.callTool(write)) as Result;
    expect(code(declined)).toBe('GH_ERR_APPROVAL_DENIED');
    expect(await stateOf(h, approvalOf(declined).id)).toBe('denied');
    action = 'cancel';
    const dismissed = (await client.callTool({ name: 'fx__write', arguments: { key: 'k2', value: 'v' } })) as Result;
    expect(code(dismissed)).toBe('GH_ERR_CANCELLED');
    expect(await stateOf(h, approvalOf(dismissed).id)).toBe('cancelled');
    expect(h.writes()).toBe(0);
  });

  it('an approver deciding on the page while the form is open settles the call; expiry ends it', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy', form);
    const seen = onElicit(client, never);
    const call = client.callTool(write) as Promise<Result>;
    await h.gateway.approvals.approve((await pending(h)).id, 'bob');
    expect(text(await call)).toBe('wrote k');
    const expired = client.callTool({ name: 'fx__write', arguments: { key: 'k2', value: 'v' } }) as Promise<Result>;
    await pending(h); // the earlier ones are settled: this is the new call's
    await waitFor(() => seen.length === 2, 'the second form to be open');
    await outliveApprovals(h);
    expect(code(await expired)).toBe('GH_ERR_APPROVAL_EXPIRED');
    expect(h.writes()).toBe(1);
  });

  it('cancel: the client giving up while the form is open withdraws the approval', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy', form);
    onElicit(client, never);
    const controller = new AbortController();
    const call = client.callTool(write, { signal: controller.signal } as never);
    const approval = await pending(h);
    controller.abort('gave up');
    await expect(call).rejects.toBeDefined();
    await waitFor(async () => (await stateOf(h, approval.id)) === 'cancelled', 'the approval to be withdrawn');
    expect(h.writes()).toBe(0);
  });

  it('no form where the caller may not approve their own call (selfApprove: false): the pending result', async () => {
    const h = await harness({ approval: '{ selfApprove: false }' });
    const client = await connect(h.url, 'legacy', form);
    const seen = onElicit(client, () => ({ action: 'accept', content: { confirm: true } }));
    const first = (await client.callTool(write)) as Result;
    expect(code(first)).toBe('GH_ERR_APPROVAL_PENDING');
    expect(seen).toHaveLength(0);
    await h.gateway.approvals.approve(approvalOf(first).id, 'bob');
    expect(text((await client.callTool(write)) as Result)).toBe('wrote k');
    expect(h.writes()).toBe(1);
  });
});

describe('a 2025 client with URL elicitation: a link to the approval page, the call held', () => {
  const url = { elicitation: { url: {} } };

  it('approve: the link names the page, the held call completes once, and elicitation/complete follows', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy', url);
    const seen = onElicit(client, () => ({ action: 'accept' }));
    const completed: string[] = [];
    client.setNotificationHandler('notifications/elicitation/complete' as never, ((n: { params: { elicitationId: string } }) => void completed.push(n.params.elicitationId)) as never);
    const call = client.callTool(write) as Promise<Result>;
    const approval = await pending(h);
    await waitFor(() => seen.length > 0, 'the URL elicitation');
    expect(seen[0]).toMatchObject({ mode: 'url', url: expect.stringMatching(new RegExp(`/approvals/${approval.id}$`)), elicitationId: expect.stringContaining(approval.id) });
    await h.gateway.approvals.approve(approval.id, 'bob');
    expect(text(await call)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    await waitFor(() => completed.length > 0, 'notifications/elicitation/complete');
    expect(completed).toEqual([seen[0].elicitationId]);
    expect(await channels(h)).toEqual(['url_elicitation']);
  });

  it('deny on the page, or decline of the link, ends the call denied', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy', url);
    let action = 'accept';
    onElicit(client, () => ({ action }));
    const call = client.callTool(write) as Promise<Result>;
    await h.gateway.approvals.deny((await pending(h)).id, 'bob', 'no');
    expect(code(await call)).toBe('GH_ERR_APPROVAL_DENIED');
    action = 'decline';
    const declined = (await client.callTool({ name: 'fx__write', arguments: { key: 'k2', value: 'v' } })) as Result;
    expect(code(declined)).toBe('GH_ERR_APPROVAL_DENIED');
    expect(await stateOf(h, approvalOf(declined).id)).toBe('denied');
    expect(h.writes()).toBe(0);
  });

  it('a hold that runs out gives the pending result, elicitation/complete follows the decision, and the retry after approval runs once', async () => {
    const h = await harness({ config: { approvals: { ttl: 60_000, holdBudget: 200, holdBudgetByClient: {}, groups: {} } } });
    const client = await connect(h.url, 'legacy', url);
    const seen = onElicit(client, () => ({ action: 'accept' }));
    const completed: string[] = [];
    client.setNotificationHandler('notifications/elicitation/complete' as never, ((n: { params: { elicitationId: string } }) => void completed.push(n.params.elicitationId)) as never);
    const first = (await client.callTool(write)) as Result;
    expect(code(first)).toBe('GH_ERR_APPROVAL_PENDING');
    expect(seen).toHaveLength(1);
    expect(completed).toEqual([]);
    await h.gateway.approvals.approve(approvalOf(first).id, 'bob');
    await waitFor(() => completed.length > 0, 'notifications/elicitation/complete on the session stream');
    expect(completed).toEqual([seen[0].elicitationId]);
    expect(text((await client.callTool(write)) as Result)).toBe('wrote k');
    expect(h.writes()).toBe(1);
  });

  it('expire and cancel', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy', url);
    const seen = onElicit(client, () => ({ action: 'accept' }));
    const expired = client.callTool(write) as Promise<Result>;
    await pending(h);
    await waitFor(() => seen.length > 0, 'the URL elicitation');
    await outliveApprovals(h);
    expect(code(await expired)).toBe('GH_ERR_APPROVAL_EXPIRED');

    const controller = new AbortController();
    const cancelled = client.callTool({ name: 'fx__write', arguments: { key: 'k2', value: 'v' } }, { signal: controller.signal } as never);
    const approval = await pending(h);
    controller.abort('gave up');
    await expect(cancelled).rejects.toBeDefined();
    await waitFor(async () => (await stateOf(h, approval.id)) === 'cancelled', 'the approval to be withdrawn');
    expect(h.writes()).toBe(0);
  });
});

describe('a 2026-07-28 client: input_required, with a signed requestState the retry carries back', () => {
  type Raw = Result & { resultType?: string; inputRequests?: Record<string, { method: string; params: ElicitParams }>; requestState?: string };
  const manual = (client: Client, params: Record<string, unknown>) => client.callTool(params as never, { allowInputRequired: true } as never) as Promise<Raw>;

  it('form: the confirm form approves as the caller, and the retry runs the call once', async () => {
    const h = await harness();
    const client = await connect(h.url, 'modern', { elicitation: { form: {} } });
    const seen = onElicit(client, () => ({ action: 'accept', content: { confirm: true } }));
    expect(text((await client.callTool(write)) as Result)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    expect(seen[0]).toMatchObject({ mode: 'form' });
    expect((await h.gateway.approvals.list('consumed'))[0].votes.map((v) => v.actor)).toEqual(['tester']);
    expect(await channels(h)).toEqual(['mrtr_form', 'mrtr_form']);
  });

  it('url: a link to the approval page; the retry is held until an approver decides, then runs once', async () => {
    const h = await harness();
    const client = await connect(h.url, 'modern', { elicitation: { url: {} } });
    const seen = onElicit(client, () => ({ action: 'accept' }));
    const call = client.callTool(write) as Promise<Result>;
    const approval = await pending(h);
    await waitFor(() => seen.length > 0, 'the URL elicitation');
    expect(seen[0]).toMatchObject({ mode: 'url', url: expect.stringMatching(new RegExp(`/approvals/${approval.id}$`)) });
    // Approved only once the retry is held (its own approval_required record): approved sooner, on a loaded machine
    // the retry could arrive after the decision and run at once, and the hold would go untested.
    await waitFor(async () => (await channels(h)).length === 2, 'the retry to be held');
    await h.gateway.approvals.approve(approval.id, 'bob');
    expect(text(await call)).toBe('wrote k');
    expect(h.writes()).toBe(1);
    expect(await channels(h)).toEqual(['mrtr_url', 'mrtr_url']);
  });

  it('without elicitation it goes down the ladder: held with a progress token, else the pending result', async () => {
    const h = await harness();
    const client = await connect(h.url, 'modern');
    const first = (await client.callTool(write)) as Result;
    expect(code(first)).toBe('GH_ERR_APPROVAL_PENDING');
    const heldCall = client.callTool({ name: 'fx__write', arguments: { key: 'k2', value: 'v' } }, { onprogress: () => undefined } as never) as Promise<Result>;
    await waitFor(async () => (await h.gateway.approvals.list('pending')).length === 2, 'the second approval');
    const second = (await h.gateway.approvals.list('pending')).find((a) => a.id !== approvalOf(first).id)!;
    await h.gateway.approvals.approve(second.id, 'bob');
    expect(text(await heldCall)).toBe('wrote k2');
    expect(await channels(h)).toEqual(['pending', 'hold']);
  });

  it('deny on the page and decline of the form end the call denied; expiry ends it expired', async () => {
    const h = await harness();
    const url = await connect(h.url, 'modern', { elicitation: { url: {} } });
    const linked = onElicit(url, () => ({ action: 'accept' }));
    const call = url.callTool(write) as Promise<Result>;
    await h.gateway.approvals.deny((await pending(h)).id, 'bob', 'no');
    expect(code(await call)).toBe('GH_ERR_APPROVAL_DENIED');

    const form = await connect(h.url, 'modern', { elicitation: { form: {} } });
    onElicit(form, () => ({ action: 'decline' }));
    const declined = (await form.callTool({ name: 'fx__write', arguments: { key: 'k2', value: 'v' } })) as Result;
    expect(code(declined)).toBe('GH_ERR_APPROVAL_DENIED');
    expect(await stateOf(h, approvalOf(declined).id)).toBe('denied');

    const expired = url.callTool({ name: 'fx__write', arguments: { key: 'k3', value: 'v' } }) as Promise<Result>;
    await pending(h); // the earlier ones are settled: this is the new call's
    await waitFor(() => linked.length === 2, 'the link for the third call');
    await outliveApprovals(h);
    expect(code(await expired)).toBe('GH_ERR_APPROVAL_EXPIRED');
    expect(h.writes()).toBe(0);
  });

  it('cancel: giving up while the retry is held withdraws the approval', async () => {
    const h = await harness();
    const client = await connect(h.url, 'modern', { elicitation: { url: {} } });
    const seen = onElicit(client, () => ({ action: 'accept' }));
    const controller = new AbortController();
    const call = client.callTool(write, { signal: controller.signal } as never);
    const approval = await pending(h);
    await waitFor(() => seen.length > 0, 'the URL elicitation');
    // The retry has arrived (its own job.approval_required) and is held: cancel it there.
    await waitFor(async () => (await channels(h)).length === 2, 'the retry to be held');
    controller.abort('gave up');
    await expect(call).rejects.toBeDefined();
    await waitFor(async () => (await stateOf(h, approval.id)) === 'cancelled', 'the approval to be withdrawn');
    expect(h.writes()).toBe(0);
  });

  it('by hand: still pending means input_required again; the approved retry runs once; a second one asks anew', async () => {
    const h = await harness({ config: { approvals: { ttl: 60_000, holdBudget: 200, holdBudgetByClient: {}, groups: {} } } });
    const client = await connect(h.url, 'modern', { elicitation: { url: {} } });
    const first = await manual(client, write);
    expect(first.resultType).toBe('input_required');
    const { id } = approvalOf(first);
    expect(first.inputRequests!.gatehouse_approval).toMatchObject({ method: 'elicitation/create', params: { mode: 'url', url: expect.stringContaining(`/approvals/${id}`) } });
    // Signed, readable: the approval id, the binding digest, what was asked, an expiry.
    const [version, body] = first.requestState!.split('.');
    expect(version).toBe('gh1');
    expect(JSON.parse(Buffer.from(body, 'base64url').toString())).toMatchObject({ a: id, b: expect.stringMatching(/^sha256:/), k: 'url', x: expect.any(Number) });

    const retry = { ...write, inputResponses: { gatehouse_approval: { action: 'accept' } }, requestState: first.requestState };
    const again = await manual(client, retry);
    expect(again.resultType).toBe('input_required');
    expect(Object.keys(again.inputRequests ?? {})).toEqual([]); // nothing new to ask: the state only
    expect(again.requestState).toEqual(expect.any(String));

    await h.gateway.approvals.approve(id, 'bob');
    expect(text(await manual(client, { ...write, requestState: again.requestState }))).toBe('wrote k');
    expect(h.writes()).toBe(1);
    const replay = await manual(client, { ...write, requestState: again.requestState });
    expect(replay.resultType).toBe('input_required'); // used: a new approval is asked for
    expect(approvalOf(replay).id).not.toBe(id);
    expect(h.writes()).toBe(1);
  });

  it('refuses a tampered or foreign requestState (-32602), and a retry with other arguments (GH_ERR_APPROVAL_MISMATCH)', async () => {
    const h = await harness();
    const client = await connect(h.url, 'modern', { elicitation: { url: {} } });
    const first = await manual(client, write);
    const { id } = approvalOf(first);
    await h.gateway.approvals.approve(id, 'bob');
    const [version, body, mac] = first.requestState!.split('.');
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString());
    const forged = `${version}.${Buffer.from(JSON.stringify({ ...payload, x: payload.x + 1 })).toString('base64url')}.${mac}`;
    for (const requestState of [forged, `${version}.${body}.${'A'.repeat(43)}`, 'not-a-state']) {
      await expect(manual(client, { ...write, requestState })).rejects.toMatchObject({ code: -32602, data: { code: 'GH_ERR_REQUEST_STATE_INVALID' } });
    }
    const other = await manual(client, { name: 'fx__write', arguments: { key: 'k', value: 'other' }, requestState: first.requestState });
    expect(code(other)).toBe('GH_ERR_APPROVAL_MISMATCH');
    expect(h.writes()).toBe(0);
    expect(await stateOf(h, id)).toBe('approved'); // still there for the call it was granted for
    expect(text(await manual(client, { ...write, requestState: first.requestState }))).toBe('wrote k');
    expect(h.writes()).toBe(1);
  });

  it('concurrent duplicate retries after approval: only one runs', async () => {
    const h = await harness();
    const client = await connect(h.url, 'modern', { elicitation: { url: {} } });
    const first = await manual(client, write);
    await h.gateway.approvals.approve(approvalOf(first).id, 'bob');
    const results = await Promise.all(Array.from({ length: 5 }, () => manual(client, { ...write, requestState: first.requestState })));
    expect(results.filter((r) => r.resultType !== 'input_required' && !r.isError)).toHaveLength(1);
    expect(h.writes()).toBe(1);
  });
});

describe('re-checks before an approved call runs', () => {
  it('a policy changed before approval is decided again: a deny now wins over the approval', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy');
    const { id } = approvalOf((await client.callTool(write)) as Result);
    writeFileSync(h.policyFile, writePolicy(undefined, 'deny'));
    expect(h.gateway.reloadPolicy()).toMatchObject({ kind: 'swapped' });
    await h.gateway.approvals.approve(id, 'bob');
    expect(code((await client.callTool(write)) as Result)).toBe('GH_ERR_POLICY_DENIED');
    expect(h.writes()).toBe(0);
  });

  it('a policy changed before approval that still asks for one keeps the approval (another snapshot), which runs once', async () => {
    const h = await harness();
    const client = await connect(h.url, 'modern', { elicitation: { url: {} } });
    const manualCall = (params: Record<string, unknown>) => client.callTool(params as never, { allowInputRequired: true } as never) as Promise<Result & { requestState?: string }>;
    const first = await manualCall(write);
    const { id } = approvalOf(first);
    const before = (await h.gateway.approvals.get(id))!.policySnapshot;
    writeFileSync(h.policyFile, writePolicy('{ ttl: 10m }'));
    expect(h.gateway.reloadPolicy()).toMatchObject({ kind: 'swapped' });
    await h.gateway.approvals.approve(id, 'bob');
    expect(text(await manualCall({ ...write, requestState: first.requestState }))).toBe('wrote k');
    const used = (await h.gateway.approvals.get(id))!;
    expect(used.claimedBy!.policySnapshot).not.toBe(before);
    expect(h.writes()).toBe(1);
  });
});

describe('the built-in approval tools', () => {
  it('are listed to every client, not under any upstream, and show an approval only to the caller who asked for it', async () => {
    const h = await harness({ config: { auth: approverAuth } });
    const agent = await connectWithKey(h.url, KEYS.caller, 'agent');
    const alice = await connectWithKey(h.url, KEYS.approver, 'alice');
    clients.push(agent, alice);
    const names = (await agent.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['gatehouse_approval_status', 'gatehouse_approval_wait']));
    const { id } = approvalOf((await agent.callTool(write)) as Result);

    const status = (await agent.callTool({ name: 'gatehouse_approval_status', arguments: { approval_id: id } })) as Result;
    expect(status.isError).toBeFalsy();
    expect(status.structuredContent).toMatchObject({ approvalId: id, state: 'pending', tool: 'fx__write', url: expect.stringContaining(`/approvals/${id}`) });
    expect(text(status)).toContain('retry the original call');
    const foreign = (await alice.callTool({ name: 'gatehouse_approval_status', arguments: { approval_id: id } })) as Result;
    expect(code(foreign)).toBe('GH_ERR_APPROVAL_NOT_FOUND');
    expect(code((await agent.callTool({ name: 'gatehouse_approval_wait', arguments: { approval_id: id, seconds: 46 } })) as Result)).toBe('GH_ERR_INVALID_ARGUMENTS');

    let waitStarted!: () => void;
    const started = new Promise<void>((resolve) => (waitStarted = resolve));
    const waiting = agent.callTool({ name: 'gatehouse_approval_wait', arguments: { approval_id: id, seconds: 20 } }, { onprogress: () => waitStarted() } as never) as Promise<Result>;
    await started; // its first progress goes out as the wait begins
    await h.gateway.approvals.approve(id, 'alice');
    const waited = await waiting;
    expect(waited.structuredContent).toMatchObject({ state: 'approved' });
    expect(text(waited)).toContain('retry the original call now');
    expect(text((await agent.callTool(write)) as Result)).toBe('wrote k');
    expect(((await agent.callTool({ name: 'gatehouse_approval_status', arguments: { approval_id: id } })) as Result).structuredContent).toMatchObject({ state: 'consumed' });
    expect(h.writes()).toBe(1);
  });

  it('wait reports a still-pending approval when its time is up', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy');
    const { id } = approvalOf((await client.callTool(write)) as Result);
    const waited = (await client.callTool({ name: 'gatehouse_approval_wait', arguments: { approval_id: id, seconds: 1 } })) as Result;
    expect(waited.structuredContent).toMatchObject({ state: 'pending' });
  });
});

describe('onApprove: execute', () => {
  it('runs the call when the approval is granted after the client gave up, and hands its result to exactly one identical retry', async () => {
    const h = await harness({ approval: '{ onApprove: execute }' });
    const client = await connect(h.url, 'legacy');
    const { id } = approvalOf((await client.callTool(write)) as Result);
    await h.gateway.approvals.approve(id, 'bob');
    await waitFor(() => h.writes() === 1, 'the gateway to run the approved call');
    await waitFor(async () => (await h.gateway.approvals.get(id))?.execution?.finishedAt !== undefined, 'the result to be kept');
    const retry = (await client.callTool(write)) as Result;
    expect(text(retry)).toBe('wrote k');
    expect(code((await client.callTool(write)) as Result)).toBe('GH_ERR_APPROVAL_PENDING'); // the result went to one retry only
    expect(h.writes()).toBe(1);
  });

  it('a call its session budget refuses when the gateway runs it on approval ends the execution with that refusal, handed to the retry', async () => {
    const h = await harness({ approval: '{ onApprove: execute }' });
    writeFileSync(h.policyFile, `${writePolicy('{ onApprove: execute }')}  - { id: one-call, match: {}, effect: allow, budget: { calls: 1, per: principal } }\n`);
    expect(h.gateway.reloadPolicy()).toMatchObject({ kind: 'swapped' });
    const client = await connect(h.url, 'legacy');
    const { id } = approvalOf((await client.callTool(write)) as Result);
    expect(text((await client.callTool({ name: 'fx__echo', arguments: { text: 'spends the budget' } })) as Result)).toBe('echo: spends the budget');
    await h.gateway.approvals.approve(id, 'bob');
    await waitFor(async () => (await h.gateway.approvals.get(id))?.execution?.finishedAt !== undefined, 'the execution to end');
    expect(code((await client.callTool(write)) as Result)).toBe('GH_ERR_BUDGET_EXHAUSTED');
    expect(h.writes()).toBe(0);
  });

  it('a call held when the approval is granted runs there, once', async () => {
    const h = await harness({ approval: '{ onApprove: execute }' });
    const client = await connect(h.url, 'legacy');
    const call = client.callTool(write, { onprogress: () => undefined } as never) as Promise<Result>;
    const { id } = await pending(h);
    await h.gateway.approvals.approve(id, 'bob');
    const result = await call;
    expect(text(result)).toBe('wrote k');
    // The held call claimed the approval (single use), so the gateway's own run on approval never could.
    const jobId = (result._meta?.['gatehouse/job'] as { jobId: string }).jobId;
    expect(await h.gateway.approvals.get(id)).toMatchObject({ state: 'consumed', claimedBy: { jobId } });
    expect((await h.gateway.approvals.get(id))?.execution).toBeUndefined();
    expect(h.writes()).toBe(1);
  });

  it('a cancelled call withdraws its approval, so nothing runs', async () => {
    const h = await harness({ approval: '{ onApprove: execute }' });
    const client = await connect(h.url, 'legacy');
    const controller = new AbortController();
    const call = client.callTool(write, { onprogress: () => undefined, signal: controller.signal } as never);
    const approval = await pending(h);
    controller.abort('gave up');
    await expect(call).rejects.toBeDefined();
    await waitFor(async () => (await stateOf(h, approval.id)) === 'cancelled', 'the approval to be withdrawn');
    expect(h.writes()).toBe(0);
  });
});

describe('a 2025 client that runs the call as a task (2025-11-25 experimental tasks)', () => {
  // The SDK v2 client has no task runtime, but sends and validates the task requests with the core schemas.
  const startTask = async (client: Client, args = write.arguments) =>
    (await client.request({ method: 'tools/call', params: { name: 'fx__write', arguments: args, task: { ttl: 60_000 } } }, CreateTaskResultSchema)).task;
  const getTask = (client: Client, taskId: string) => client.request({ method: 'tasks/get', params: { taskId } }, GetTaskResultSchema);
  const taskResult = (client: Client, taskId: string) => client.request({ method: 'tasks/result', params: { taskId } }, GetTaskPayloadResultSchema) as Promise<Result>;

  it('approve: the task waits input_required, past any hold budget, then completes with the upstream result, once', async () => {
    const h = await harness({ config: { approvals: { ttl: 60_000, holdBudget: 100, holdBudgetByClient: {}, groups: {} } } });
    const client = await connect(h.url, 'legacy');
    expect(client.getServerCapabilities()?.tasks).toMatchObject({ requests: { tools: { call: {} } } });
    expect((await client.listTools()).tools.find((t) => t.name === 'fx__write')?.execution).toEqual({ taskSupport: 'optional' });
    const task = await startTask(client);
    expect(task.status).toBe('working');
    const approval = await pending(h);
    await waitFor(async () => (await getTask(client, task.taskId)).status === 'input_required', 'the task to wait for a human');
    expect((await getTask(client, task.taskId)).statusMessage).toContain(`/approvals/${approval.id}`);
    await sleep(200); // longer than the hold budget: a task is not held by a request
    await h.gateway.approvals.approve(approval.id, 'bob');
    const result = await taskResult(client, task.taskId);
    expect(text(result)).toBe('wrote k');
    expect(result._meta?.['io.modelcontextprotocol/related-task']).toEqual({ taskId: task.taskId });
    expect((await getTask(client, task.taskId)).status).toBe('completed');
    expect(h.writes()).toBe(1);
    expect(await channels(h)).toEqual(['task']);
  });

  it('deny and expire fail the task; cancelling it withdraws the approval', async () => {
    const h = await harness();
    const client = await connect(h.url, 'legacy');
    const denied = await startTask(client);
    await h.gateway.approvals.deny((await pending(h)).id, 'bob', 'no');
    expect(code(await taskResult(client, denied.taskId))).toBe('GH_ERR_APPROVAL_DENIED');
    expect((await getTask(client, denied.taskId)).status).toBe('failed');

    const expired = await startTask(client, { key: 'k2', value: 'v' });
    await pending(h); // the earlier ones are settled: this is the new call's
    await outliveApprovals(h);
    expect(code(await taskResult(client, expired.taskId))).toBe('GH_ERR_APPROVAL_EXPIRED');

    const cancelled = await startTask(client, { key: 'k3', value: 'v' });
    const approval = await pending(h);
    const after = await client.request({ method: 'tasks/cancel', params: { taskId: cancelled.taskId } }, CancelTaskResultSchema);
    expect(after.status).toBe('cancelled');
    await waitFor(async () => (await stateOf(h, approval.id)) === 'cancelled', 'the approval to be withdrawn');
    expect(h.writes()).toBe(0);
  });

  it("keeps another caller's tasks out of reach", async () => {
    const h = await harness({ config: { auth: approverAuth } });
    const agent = await connectWithKey(h.url, KEYS.caller, 'agent');
    const alice = await connectWithKey(h.url, KEYS.approver, 'alice');
    clients.push(agent, alice);
    const task = await startTask(agent);
    await expect(getTask(alice, task.taskId)).rejects.toMatchObject({ code: -32602 });
    await expect(alice.request({ method: 'tasks/cancel', params: { taskId: task.taskId } }, CancelTaskResultSchema)).rejects.toMatchObject({ code: -32602 });
    expect((await getTask(agent, task.taskId)).taskId).toBe(task.taskId);
  });
});
