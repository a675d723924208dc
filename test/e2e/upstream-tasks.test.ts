// Item 4 of issue 16: the 2026-07-28 tasks extension (SEP-2663) through Gatehouse, in front of the conformance
// fixture's task tools over HTTP and over stdio. Raw JSON-RPC over HTTP, not the SDK v2 client: its 2026-07-28 codec
// refuses any result whose resultType is not "complete" or "input_required" (decodeResult in
// @modelcontextprotocol/client/dist/src-CeKsbNLO.mjs: "Unsupported result type 'task'"), so it cannot receive a task.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditOf, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { startConformanceServer, type ConformanceServerHandle } from '../fixtures/conformance-server.ts';
import { FIXTURE_OVER_STDIO } from '../conformance/through-gatehouse.ts';

const MODERN = '2026-07-28';
const TASKS = 'io.modelcontextprotocol/tasks';
const KEYS = { alice: 'alice-key-0123456789abcdef0123456789', bob: 'bob-key-0123456789abcdef0123456789ab', mallory: 'mallory-key-0123456789abcdef01234567' };

let h: Harness;
let fixture: ConformanceServerHandle;

beforeAll(async () => {
  fixture = await startConformanceServer(0);
  const dir = mkdtempSync(join(tmpdir(), 'upstream-tasks-'));
  const policy = join(dir, 'policy.yaml');
  const rules = [
    '{ id: no-deletes-over-http, match: { tools: [web__confirm_delete] }, effect: deny, reason: not here }',
    '{ id: greetings-need-a-human, match: { tools: [local__greet, web__failing_job] }, effect: require_approval, reason: a human says hello }',
    `{ id: capped, match: { tools: ["*__slow_compute"] }, effect: allow_with_constraints, when: 'has(args.label) && args.label == "capped"', constraints: { maxOutputBytes: 12 } }`,
    '{ id: scanned, match: { tools: [web__test_tool_with_task] }, effect: allow, scanResult: true }',
  ];
  writeFileSync(policy, `version: 2\ndefault: allow\nrules:\n${rules.map((r) => `  - ${r}\n`).join('')}`);
  h = await startHarness({
    policies: [policy],
    auth: {
      apiKeys: [
        { key: KEYS.alice, principal: 'alice', tenant: 'acme', roles: [] },
        { key: KEYS.bob, principal: 'bob', tenant: 'acme', roles: [] },
        { key: KEYS.mallory, principal: 'alice', tenant: 'other', roles: [] },
      ],
    },
    upstreams: { web: { url: fixture.url, headers: {}, timeout: 60_000 }, local: { ...FIXTURE_OVER_STDIO, env: {}, timeout: 60_000 } },
  });
  await waitFor(() => ['web__slow_compute', 'local__slow_compute'].every((n) => h.gateway.catalog.resolve(n)), 'both upstreams to list their task tools');
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fixture?.close();
});

type Rpc = { status: number; result?: any; error?: { code: number; message: string; data?: any } };

/** One 2026-07-28 request as `who`, declaring the tasks extension unless told not to. */
async function rpc(who: keyof typeof KEYS, method: string, params: Record<string, unknown>, extension = true): Promise<Rpc> {
  const name = typeof params.name === 'string' ? params.name : typeof params.taskId === 'string' ? params.taskId : undefined;
  const envelope = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientInfo': { name: 'tasks-test', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': extension ? { elicitation: {}, extensions: { [TASKS]: {} } } : {} };
  const response = await fetch(h.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${KEYS[who]}`, 'mcp-protocol-version': MODERN, 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: envelope } }),
  });
  const text = await response.text();
  const body = response.headers.get('content-type')?.includes('text/event-stream') ? JSON.parse(text.split('\n').filter((l) => l.startsWith('data:')).at(-1)!.slice(5)) : JSON.parse(text);
  return { status: response.status, ...(body.result ? { result: body.result } : {}), ...(body.error ? { error: body.error } : {}) };
}

async function settled(who: keyof typeof KEYS, taskId: string, status = ['completed', 'failed', 'cancelled']): Promise<any> {
  let task: any;
  await waitFor(async () => status.includes((task = (await rpc(who, 'tasks/get', { taskId })).result)?.status), `task ${taskId} to reach ${status.join('/')}`);
  return task;
}

for (const upstream of ['web', 'local']) {
  describe(`a task-augmented call to a 2026-07-28 upstream over ${upstream === 'web' ? 'HTTP' : 'stdio'}`, () => {
    it('creates the upstream task under a Gatehouse id, and tasks/get of that id reaches it and inlines its result', async () => {
      const created = await rpc('alice', 'tools/call', { name: `${upstream}__slow_compute`, arguments: { seconds: 0.2, label: 'e2e' } });
      expect(created.result).toMatchObject({ resultType: 'task', status: 'working' });
      // Not the fixture's own id (fixture-task-N-…): Gatehouse's signed one.
      expect(created.result.taskId).toMatch(/^ght1\./);
      const done = await settled('alice', created.result.taskId);
      expect(done).toMatchObject({ taskId: created.result.taskId, status: 'completed', resultType: 'complete' });
      expect(done.result.content[0].text).toBe('Computed e2e after 0.2s');
      // One governed job: decided before it was dispatched to the upstream, which made the task; audited as such.
      const jobId = created.result._meta['gatehouse/job'].jobId as string;
      const types = async () => (await auditOf(h.dataDir, 'acme')).filter((r) => r.jobId === jobId).map((r) => r.type);
      await waitFor(async () => (await types()).includes('job.succeeded'), 'the job to be recorded');
      const recorded = await types();
      expect(recorded.indexOf('job.decided')).toBeGreaterThanOrEqual(0);
      expect(recorded.indexOf('job.decided')).toBeLessThan(recorded.indexOf('job.dispatched'));
    });

    it('refuses another caller the task: another principal, the same principal in another tenant, and an altered id are all unknown', async () => {
      const { result } = await rpc('alice', 'tools/call', { name: `${upstream}__slow_compute`, arguments: { seconds: 30, label: 'mine' } });
      const forged = `${result.taskId.slice(0, -3)}${result.taskId.endsWith('AAA') ? 'BBB' : 'AAA'}`;
      for (const [who, taskId] of [['bob', result.taskId], ['mallory', result.taskId], ['alice', forged]] as const) {
        for (const method of ['tasks/get', 'tasks/cancel', 'tasks/update']) {
          const answer = await rpc(who, method, { taskId, ...(method === 'tasks/update' ? { inputResponses: {} } : {}) });
          expect(answer.error, `${who} ${method}`).toMatchObject({ code: -32602, data: { code: 'GH_ERR_TASK_UNKNOWN' } });
        }
      }
      // Still alive and still alice's: nobody else's cancel reached it.
      expect((await rpc('alice', 'tasks/get', { taskId: result.taskId })).result.status).toBe('working');
      await rpc('alice', 'tasks/cancel', { taskId: result.taskId });
    });

    it('cancels: tasks/cancel answers an empty ack and the upstream task ends cancelled', async () => {
      const { result } = await rpc('alice', 'tools/call', { name: `${upstream}__slow_compute`, arguments: { seconds: 60, label: 'cancel-me' } });
      const ack = await rpc('alice', 'tasks/cancel', { taskId: result.taskId });
      expect(ack.result).toEqual({ resultType: 'complete', _meta: expect.any(Object) });
      expect((await settled('alice', result.taskId)).status).toBe('cancelled');
    });
  });
}

describe('the tasks extension at the front', () => {
  it('relays an input_required task: tasks/update answers reach the upstream and the task completes', async () => {
    const { result } = await rpc('alice', 'tools/call', { name: 'local__confirm_delete', arguments: { filename: 'notes.txt' } });
    const waiting = await settled('alice', result.taskId, ['input_required']);
    expect(Object.keys(waiting.inputRequests)).toEqual(['confirm']);
    const ack = await rpc('alice', 'tasks/update', { taskId: result.taskId, inputResponses: { confirm: { action: 'accept', content: { confirm: true } } } });
    expect(ack.result.resultType).toBe('complete');
    expect((await settled('alice', result.taskId)).result.content[0].text).toBe('Deleted notes.txt');
  });

  it('decides before the upstream sees the call: a denied task tool creates no task', async () => {
    const denied = await rpc('alice', 'tools/call', { name: 'web__confirm_delete', arguments: { filename: 'x' } });
    expect(denied.result).toMatchObject({ isError: true, resultType: 'complete' });
    expect(denied.result.taskId).toBeUndefined();
  });

  it('answers -32021 to a client that did not declare the extension, and -32601 for the removed tasks/result and tasks/list', async () => {
    const { result } = await rpc('alice', 'tools/call', { name: 'web__slow_compute', arguments: { seconds: 30 } });
    const missing = await rpc('alice', 'tasks/get', { taskId: result.taskId }, false);
    expect(missing).toMatchObject({ status: 400, error: { code: -32021, data: { requiredCapabilities: { extensions: { [TASKS]: {} } } } } });
    // Without the extension a task-supporting tool runs as a plain call (the upstream decides, as it would alone).
    const plain = await rpc('alice', 'tools/call', { name: 'web__slow_compute', arguments: { seconds: 0, label: 'sync' } }, false);
    expect(plain.result).toMatchObject({ resultType: 'complete', content: [{ text: 'Computed sync after 0s' }] });
    for (const method of ['tasks/result', 'tasks/list']) expect((await rpc('alice', method, { taskId: result.taskId })).error?.code).toBe(-32601);
    await rpc('alice', 'tasks/cancel', { taskId: result.taskId });
  });

  it('answers whole a call whose result Gatehouse checks: a task result would reach the client past the checks', async () => {
    // The tasks extension is not passed on for it, so the upstream runs it in the call and the constraint applies.
    const capped = await rpc('alice', 'tools/call', { name: 'web__slow_compute', arguments: { seconds: 0, label: 'capped' } });
    expect(capped.result.resultType).toBe('complete');
    expect(capped.result.taskId).toBeUndefined();
    expect(capped.result.content[0].text).toContain('output truncated');
    expect(capped.result.content[0].text).not.toContain('after 0s');
    // A tool that runs only as a task cannot be answered whole: a clear tool error, and the upstream made no task.
    const required = await rpc('alice', 'tools/call', { name: 'web__test_tool_with_task', arguments: {} });
    expect(required.result).toMatchObject({ resultType: 'complete', isError: true, _meta: { 'gatehouse/error': { code: 'GH_ERR_ERA_UNTRANSLATABLE' } } });
    expect(required.result.content[0].text).toContain('task');
  });

  it('advertises the extension in server/discover', async () => {
    expect((await rpc('alice', 'server/discover', {})).result.capabilities.extensions).toEqual({ [TASKS]: {} });
  });
});

describe('an approval inside a task (Gatehouse keeps the task)', () => {
  const pending = async (tool: string) => {
    let approval: Awaited<ReturnType<typeof h.gateway.approvals.list>>[number] | undefined;
    await waitFor(async () => (approval = (await h.gateway.approvals.list('pending')).find((a) => (a as { tool?: string }).tool === tool || JSON.stringify(a).includes(tool))) !== undefined, `a pending approval for ${tool}`);
    return approval!;
  };

  it('answers a task that stays input_required until the approval settles, then runs the call and inlines its result', async () => {
    const created = await rpc('alice', 'tools/call', { name: 'local__greet', arguments: { name: 'Ada' } });
    expect(created.result).toMatchObject({ resultType: 'task', status: 'input_required', ttlMs: expect.any(Number) });
    const { taskId } = created.result;
    expect(taskId).toMatch(/^task_/);
    const approval = await pending('local__greet');
    for (let i = 0; i < 3; i++) expect((await rpc('alice', 'tasks/get', { taskId })).result).toMatchObject({ status: 'input_required', statusMessage: expect.any(String) });
    // Someone else's task is unknown to them, Gatehouse's own as much as an upstream's.
    expect((await rpc('bob', 'tasks/get', { taskId })).error?.code).toBe(-32602);
    await h.gateway.approvals.approve(approval.id, 'bob');
    const done = await settled('alice', taskId);
    expect(done).toMatchObject({ status: 'completed', result: { content: [{ type: 'text', text: 'Hello, Ada!' }] } });
  });

  it('completes with the refusal when the approval is denied: the call never runs', async () => {
    const { result } = await rpc('alice', 'tools/call', { name: 'local__greet', arguments: { name: 'Eve' } });
    await h.gateway.approvals.deny((await pending('local__greet')).id, 'bob', 'no');
    const done = await settled('alice', result.taskId);
    expect(done).toMatchObject({ status: 'completed', result: { isError: true } });
    expect(JSON.stringify(done.result)).not.toContain('Hello, Eve');
  });

  it('withdraws the approval when the task is cancelled while it waits', async () => {
    const { result } = await rpc('alice', 'tools/call', { name: 'local__greet', arguments: { name: 'Cy' } });
    const approval = await pending('local__greet');
    expect((await rpc('alice', 'tasks/cancel', { taskId: result.taskId })).result.resultType).toBe('complete');
    expect((await settled('alice', result.taskId)).status).toBe('cancelled');
    await waitFor(async () => (await h.gateway.approvals.get(approval.id))?.state !== 'pending', 'the approval to be withdrawn');
    // Idempotent, as the extension has it.
    expect((await rpc('alice', 'tasks/cancel', { taskId: result.taskId })).result.resultType).toBe('complete');
  });

  it('follows the task the upstream makes once the call is approved, under the same id', async () => {
    const { result } = await rpc('alice', 'tools/call', { name: 'web__failing_job', arguments: {} });
    expect(result).toMatchObject({ resultType: 'task', status: 'input_required' });
    await h.gateway.approvals.approve((await pending('web__failing_job')).id, 'bob');
    const done = await settled('alice', result.taskId);
    expect(done).toMatchObject({ taskId: result.taskId, status: 'completed', result: { isError: true, content: [{ text: 'failing_job failed, as it always does' }] } });
  });
});
