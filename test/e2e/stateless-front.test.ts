// The HTTP front as the 2026-07-28 revision requires it (issue 16, item 3), over raw HTTP through Gatehouse in front
// of the conformance fixture: removed and unknown methods answer 404, a header that disagrees with the body answers
// 400 with -32020, results carry resultType and caching hints, and `subscriptions/listen` delivers list-changed and
// resource-updated notifications filtered as asked and tagged with the subscription id. The 2025 era is unchanged.
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStdio } from '../../src/gateway/stdio-front.ts';
import { silentLogger } from '../../src/log.ts';
import { startConformanceServer, type ConformanceServerHandle } from '../fixtures/conformance-server.ts';
import { startGatehouseInFront, type GatehouseHandle } from '../conformance/through-gatehouse.ts';
import { connectHttp, waitFor } from '../helpers/gateway-harness.ts';

const MODERN = '2026-07-28';
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';
const envelope = (capabilities: Record<string, unknown> = {}) => ({
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'stateless-front-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': capabilities,
});

let fixture: ConformanceServerHandle;
let gatehouse: GatehouseHandle;

beforeAll(async () => {
  fixture = await startConformanceServer();
  gatehouse = await startGatehouseInFront({ url: fixture.url });
});
afterAll(async () => {
  await gatehouse?.close();
  await fixture?.close();
});

/** What a conformant client repeats of the body in `Mcp-Name` (SEP-2243): the tool or prompt name, the resource URI. */
const nameOf = (method: string, params: Record<string, unknown>) => (method === 'resources/read' ? params.uri : method === 'tools/call' || method === 'prompts/get' ? params.name : undefined) as string | undefined;

/** One modern request; `headers` replace the ones a conformant client sends (undefined: not sent). */
async function modern(method: string, params: Record<string, unknown> = {}, headers: Record<string, string | undefined> = {}, id: number | string = 1): Promise<{ status: number; json: any }> {
  const name = nameOf(method, params);
  const sent = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': MODERN, 'mcp-method': method, ...(name === undefined ? {} : { 'mcp-name': name }), ...headers };
  const response = await fetch(gatehouse.url, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(sent).filter((e): e is [string, string] => e[1] !== undefined)),
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { _meta: envelope(), ...params } }),
  });
  const text = await response.text();
  const json = response.headers.get('content-type')?.includes('text/event-stream') ? JSON.parse(text.split('\n').filter((l) => l.startsWith('data:')).at(-1)!.slice(5)) : JSON.parse(text);
  return { status: response.status, json };
}

/** A `subscriptions/listen` stream: the messages so far, and a wait for the next one that matches. */
async function listen(id: string, notifications: Record<string, unknown>) {
  const controller = new AbortController();
  const response = await fetch(gatehouse.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': MODERN, 'mcp-method': 'subscriptions/listen' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'subscriptions/listen', params: { _meta: envelope(), notifications } }),
    signal: controller.signal,
  });
  const messages: any[] = [];
  const waiters = new Set<() => void>();
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        for (const line of lines) if (line.startsWith('data:')) messages.push(JSON.parse(line.slice(5)));
        for (const wake of waiters) wake();
      }
    } catch {
      /* aborted */
    }
  })();
  const next = async (predicate: (m: any) => boolean, what: string) => {
    const until = Date.now() + 10_000;
    for (;;) {
      const found = messages.find(predicate);
      if (found) return found;
      if (Date.now() > until) throw new Error(`no ${what} on the listen stream; got ${JSON.stringify(messages)}`);
      await new Promise<void>((resolve) => {
        const wake = () => (waiters.delete(wake), resolve());
        waiters.add(wake);
        setTimeout(wake, 100);
      });
    }
  };
  return { response, messages, next, close: () => controller.abort() };
}

const call = (name: string, args: Record<string, unknown> = {}) => modern('tools/call', { name, arguments: args }, { 'mcp-name': name });

describe('methods the 2026-07-28 revision removed, and unknown ones', () => {
  it.each(['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe', 'no/such-method'])('answers a modern %s with HTTP 404 and -32601, echoing the id', async (method) => {
    const reply = await modern(method, method === 'resources/subscribe' || method === 'resources/unsubscribe' ? { uri: 'test://watched-resource' } : {}, {}, 'r-7');
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({ jsonrpc: '2.0', id: 'r-7', error: { code: -32601 } });
  });

  it('still answers them on a 2025 session (the 2025 era is unchanged)', async () => {
    const post = (body: unknown, session?: string) =>
      fetch(gatehouse.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' } : {}) }, body: JSON.stringify(body) });
    const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'old', version: '1' } } });
    expect(init.status).toBe(200);
    const session = init.headers.get('mcp-session-id')!;
    await init.arrayBuffer();
    const ping = await post({ jsonrpc: '2.0', id: 2, method: 'ping' }, session);
    expect(ping.status).toBe(200);
    expect(await ping.json()).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
    const unknown = await post({ jsonrpc: '2.0', id: 3, method: 'no/such-method' }, session);
    expect(unknown.status).toBe(200);
    expect(((await unknown.json()) as any).error.code).toBe(-32601);
  });
});

describe('headers and body', () => {
  it('answers a protocol version header that disagrees with the envelope with 400 and -32020, even when the envelope names an unknown version', async () => {
    const unknownInBody = await modern('server/discover', { _meta: { ...envelope(), 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' } }, {}, 302);
    expect(unknownInBody.status).toBe(400);
    expect(unknownInBody.json).toMatchObject({ id: 302, error: { code: -32020 } });
    const olderHeader = await modern('tools/list', {}, { 'mcp-protocol-version': '2025-11-25' }, 303);
    expect(olderHeader.status).toBe(400);
    expect(olderHeader.json).toMatchObject({ id: 303, error: { code: -32020 } });
  });

  it('answers an Mcp-Method header that disagrees with the body with 400 and -32020', async () => {
    const reply = await modern('tools/list', {}, { 'mcp-method': 'prompts/list' }, 304);
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ id: 304, error: { code: -32020 } });
  });

  it('answers an Mcp-Name header that disagrees with the tool, prompt or resource in the body with 400 and -32020', async () => {
    const tool = await modern('tools/call', { name: 'test_simple_text', arguments: {} }, { 'mcp-name': 'test_error_handling' }, 305);
    expect(tool.status).toBe(400);
    expect(tool.json).toMatchObject({ id: 305, error: { code: -32020 } });
    const resource = await modern('resources/read', { uri: 'test://static-text' }, { 'mcp-name': 'test://static-binary' }, 306);
    expect(resource.status).toBe(400);
    expect(resource.json).toMatchObject({ id: 306, error: { code: -32020 } });
    // Agreeing, it is served.
    expect((await modern('prompts/get', { name: 'test_simple_prompt' }, { 'mcp-name': 'test_simple_prompt' })).status).toBe(200);
  });

  it('refuses a request without Mcp-Method, and a tool call, resource read or prompt without Mcp-Name, with 400 and -32020 (SEP-2243)', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['tools/list', {}, 'mcp-method'],
      ['tools/call', { name: 'test_simple_text', arguments: {} }, 'mcp-method'],
      ['tools/call', { name: 'test_simple_text', arguments: {} }, 'mcp-name'],
      ['resources/read', { uri: 'test://static-text' }, 'mcp-name'],
      ['prompts/get', { name: 'test_simple_prompt' }, 'mcp-name'],
    ];
    let id = 310;
    for (const [method, params, missing] of cases) {
      const reply = await modern(method, params, { [missing]: undefined }, ++id);
      expect(reply.status, `${method} without ${missing}`).toBe(400);
      expect(reply.json).toMatchObject({ id, error: { code: -32020, data: { missing } } });
    }
    // A method that names nothing needs no Mcp-Name.
    expect((await modern('tools/list', {}, { 'mcp-name': undefined })).status).toBe(200);
  });

  it('answers a version it does not speak, header and body agreeing, with 400 and -32022 naming what it supports', async () => {
    const reply = await modern('server/discover', { _meta: { ...envelope(), 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' } }, { 'mcp-protocol-version': 'v999.0.0' }, 301);
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ id: 301, error: { code: -32022, data: { supported: [MODERN], requested: 'v999.0.0' } } });
  });
});

describe('results', () => {
  it('carry resultType, and the cacheable ones ttlMs and cacheScope', async () => {
    for (const method of ['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'server/discover']) {
      const { status, json } = await modern(method);
      expect(status, method).toBe(200);
      expect(json.result, method).toMatchObject({ resultType: 'complete', cacheScope: expect.stringMatching(/^(public|private)$/) });
      expect(Number.isInteger(json.result.ttlMs) && json.result.ttlMs >= 0, method).toBe(true);
    }
    const read = await modern('resources/read', { uri: 'test://static-text' }, { 'mcp-name': 'test://static-text' });
    expect(read.json.result).toMatchObject({ resultType: 'complete', ttlMs: expect.any(Number), cacheScope: expect.any(String) });
    const called = await call('test_simple_text');
    expect(called.json.result).toMatchObject({ resultType: 'complete', content: [{ type: 'text' }] });
  });

  it('advertise in server/discover only what works: list changes and resource subscriptions, which subscriptions/listen delivers', async () => {
    const { json } = await modern('server/discover');
    expect(json.result.capabilities).toMatchObject({ tools: { listChanged: true }, prompts: { listChanged: true }, resources: { subscribe: true, listChanged: true } });
  });
});

describe('subscriptions/listen', () => {
  it('acknowledges first, with what it honours, then delivers list changes tagged with the subscription id', async () => {
    const stream = await listen('sub-tools', { toolsListChanged: true });
    try {
      expect(stream.response.status).toBe(200);
      expect(stream.response.headers.get('content-type')).toContain('text/event-stream');
      const ack = await stream.next(() => true, 'first message');
      expect(ack).toMatchObject({ method: 'notifications/subscriptions/acknowledged', params: { notifications: { toolsListChanged: true }, _meta: { [SUBSCRIPTION_ID]: 'sub-tools' } } });
      await call('test_trigger_tool_change');
      const changed = await stream.next((m) => m.method === 'notifications/tools/list_changed', 'tools/list_changed');
      expect(changed.params._meta[SUBSCRIPTION_ID]).toBe('sub-tools');
    } finally {
      stream.close();
    }
  });

  it('sends only what the client asked for: a prompts-only stream hears the prompt change, never the tool change', async () => {
    const prompts = await listen('sub-prompts', { promptsListChanged: true });
    const tools = await listen('sub-tools-2', { toolsListChanged: true });
    try {
      await prompts.next((m) => m.method === 'notifications/subscriptions/acknowledged', 'ack');
      await tools.next((m) => m.method === 'notifications/subscriptions/acknowledged', 'ack');
      await call('test_trigger_tool_change');
      await tools.next((m) => m.method === 'notifications/tools/list_changed', 'tools/list_changed');
      await call('test_trigger_prompt_change');
      const changed = await prompts.next((m) => m.method === 'notifications/prompts/list_changed', 'prompts/list_changed');
      expect(changed.params._meta[SUBSCRIPTION_ID]).toBe('sub-prompts');
      expect(prompts.messages.filter((m) => m.method === 'notifications/tools/list_changed')).toEqual([]);
      expect(tools.messages.filter((m) => m.method === 'notifications/prompts/list_changed')).toEqual([]);
    } finally {
      prompts.close();
      tools.close();
    }
  });

  it('delivers resources/updated for the URIs it subscribed to, and only those', async () => {
    const watching = await listen('sub-watched', { resourceSubscriptions: ['test://watched-resource'] });
    const other = await listen('sub-other', { resourceSubscriptions: ['test://static-text'] });
    try {
      const ack = await watching.next(() => true, 'ack');
      expect(ack.params.notifications).toEqual({ resourceSubscriptions: ['test://watched-resource'] });
      await other.next(() => true, 'ack');
      await call('test_trigger_resource_update', { uri: 'test://watched-resource' });
      const updated = await watching.next((m) => m.method === 'notifications/resources/updated', 'resources/updated');
      expect(updated.params).toMatchObject({ uri: 'test://watched-resource', _meta: { [SUBSCRIPTION_ID]: 'sub-watched' } });
      await call('test_trigger_resource_update', { uri: 'test://static-text' });
      await other.next((m) => m.method === 'notifications/resources/updated', 'resources/updated of its own URI');
      expect(other.messages.filter((m) => m.params?.uri === 'test://watched-resource')).toEqual([]);
      expect(watching.messages.filter((m) => m.params?.uri === 'test://static-text')).toEqual([]);
    } finally {
      watching.close();
      other.close();
    }
  });

  it('serves the SDK v2 client\'s listen(): list changes reach its notification handlers, until it closes the subscription', async () => {
    const client = await connectHttp(gatehouse.url, 'modern');
    const changes: string[] = [];
    client.setNotificationHandler('notifications/tools/list_changed' as never, () => void changes.push('tools'));
    client.setNotificationHandler('notifications/prompts/list_changed' as never, () => void changes.push('prompts'));
    try {
      const subscription = await client.listen({ toolsListChanged: true });
      expect(subscription.honoredFilter).toEqual({ toolsListChanged: true });
      await client.callTool({ name: 'test_trigger_prompt_change', arguments: {} });
      await client.callTool({ name: 'test_trigger_tool_change', arguments: {} });
      await waitFor(() => changes.includes('tools'), 'tools/list_changed at the SDK client');
      expect(changes).toEqual(['tools']);
      await subscription.close();
      expect(await subscription.closed).toBe('local');
    } finally {
      await client.close();
    }
  });

  it('works on a stdio connection too: acknowledged, filtered, tagged, and over once the client cancels it', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const received: any[] = [];
    let buffer = '';
    output.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) if (line.trim()) received.push(JSON.parse(line));
    });
    const front = serveStdio(gatehouse.gateway.stdioServices(), { input, output, caller: { principal: 'stdio-listener', tenant: 'default' }, maxMessageBytes: 1 << 20 }, silentLogger);
    const send = (message: unknown) => input.write(`${JSON.stringify(message)}\n`);
    const seen = async (predicate: (m: any) => boolean, what: string) => {
      const until = Date.now() + 10_000;
      while (!received.some(predicate)) {
        if (Date.now() > until) throw new Error(`no ${what} on stdio; got ${JSON.stringify(received)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return received.find(predicate);
    };
    try {
      send({ jsonrpc: '2.0', id: 'stdio-sub', method: 'subscriptions/listen', params: { _meta: envelope(), notifications: { promptsListChanged: true } } });
      const ack = await seen((m) => m.method === 'notifications/subscriptions/acknowledged', 'ack');
      expect(ack.params).toMatchObject({ notifications: { promptsListChanged: true }, _meta: { [SUBSCRIPTION_ID]: 'stdio-sub' } });
      await call('test_trigger_tool_change');
      await call('test_trigger_prompt_change');
      const changed = await seen((m) => m.method === 'notifications/prompts/list_changed' && m.params?._meta?.[SUBSCRIPTION_ID] === 'stdio-sub', 'prompts/list_changed');
      expect(changed.params._meta[SUBSCRIPTION_ID]).toBe('stdio-sub');
      expect(received.filter((m) => m.method === 'notifications/tools/list_changed' && m.params?._meta?.[SUBSCRIPTION_ID] !== undefined)).toEqual([]);
      send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'stdio-sub' } });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const before = received.length;
      await call('test_trigger_prompt_change');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received.slice(before).filter((m) => m.params?._meta?.[SUBSCRIPTION_ID] === 'stdio-sub')).toEqual([]);
    } finally {
      input.end();
      await front.closed;
    }
  });

  it('refuses a listen without a notifications filter with -32602', async () => {
    const reply = await modern('subscriptions/listen', {}, {}, 'bad-listen');
    expect(reply.json).toMatchObject({ id: 'bad-listen', error: { code: -32602 } });
  });
});
