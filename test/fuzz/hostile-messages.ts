import fc from 'fast-check';

/** The fuzzed gateway's `limits.maxMessageBytes`: small, so bodies over it are cheap to send. */
export const FUZZ_MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * Recorded real traffic: what an SDK client sends a gateway in front of the fixture upstream (tools/call of an
 * allowed tool, of refused ones, lists, pings, notifications). The fuzz mutates these, so most of what it sends
 * is nearly valid: the messages a broken or hostile client actually produces.
 */
export const RECORDED: readonly Record<string, unknown>[] = [
  { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } } },
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} },
  { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'hello' } } },
  { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'fx__write', arguments: { key: 'k', value: 'v' } } },
  { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'fx__slow_write', arguments: { key: 'k', delayMs: 1 } } },
  { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'fx__crash', arguments: {} } },
  { jsonrpc: '2.0', id: 7, method: 'ping' },
  { jsonrpc: '2.0', id: 8, method: 'resources/list', params: {} },
  { jsonrpc: '2.0', id: 9, method: 'prompts/get', params: { name: 'fx__p', arguments: {} } },
  { jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'x' }, _meta: { progressToken: 1, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } } },
  { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3, reason: 'fuzz' } },
];

const anyJson = fc.jsonValue({ maxDepth: 4 });

/** One change to a recorded message: a field dropped, replaced, a key added, the method or id swapped, nested deep. */
const mutation = (message: Record<string, unknown>): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.constantFrom(...Object.keys(message)).map((key) => Object.fromEntries(Object.entries(message).filter(([k]) => k !== key))),
    fc.tuple(fc.constantFrom(...Object.keys(message)), anyJson).map(([key, value]) => ({ ...message, [key]: value })),
    fc.tuple(fc.string(), anyJson).map(([key, value]) => ({ ...message, [key]: value })),
    fc.oneof(fc.string(), fc.constantFrom('tools/call', 'initialize', 'tasks/get', 'sampling/createMessage', '__proto__', 'constructor')).map((method) => ({ ...message, method })),
    fc.oneof(fc.constant(null), fc.double(), fc.string(), fc.object(), fc.constant(Number.MAX_SAFE_INTEGER + 2)).map((id) => ({ ...message, id })),
    fc.tuple(fc.string({ maxLength: 20 }), anyJson).map(([name, args]) => ({ ...message, method: 'tools/call', params: { name: name || 'fx__echo', arguments: args } })),
    fc.integer({ min: 10, max: 200 }).map((depth) => ({ ...message, params: { name: 'fx__echo', arguments: nested(depth) } })),
    fc.constant({ ...message, params: { name: 'fx__echo', arguments: { ['__proto__']: { polluted: true }, text: 'p' } } }),
  );

const nested = (depth: number): unknown => {
  let value: unknown = 'deep';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
};

/** What the text of a body may become on the way: cut short, a byte flipped, wrapped in a batch, or left as is. */
const garble = (text: string): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(text) },
    fc.integer({ min: 0, max: Math.max(0, text.length - 1) }).map((at) => text.slice(0, at)),
    fc.tuple(fc.integer({ min: 0, max: Math.max(0, text.length - 1) }), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => text.slice(0, at) + String.fromCharCode(byte) + text.slice(at + 1)),
    fc.integer({ min: 1, max: 5 }).map((n) => `[${Array.from({ length: n }, () => text).join(',')}]`),
    fc.constantFrom('\u0000', '\ufeff', '\u202e', '\ud800').map((c) => c + text),
  );

/** A request body: a recorded message, mutated or not, then garbled or not; or any JSON; or any text. */
export const hostileBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom(...RECORDED).chain((m) => fc.oneof(fc.constant<unknown>(m), mutation(m))).chain((m) => garble(JSON.stringify(m))) },
  { weight: 10, arbitrary: fc.json({ maxDepth: 5 }) },
  { weight: 5, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constant(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"${'x'.repeat(FUZZ_MAX_MESSAGE_BYTES)}"}}}`) },
);

/** The headers a request goes with: either era, a session id or a wrong one, content types right and wrong. */
export const hostileHeaders = (sessionId: string): fc.Arbitrary<Record<string, string>> =>
  fc
    .record({
      // Mostly right, so most requests reach the JSON-RPC layer; sometimes wrong, so the HTTP checks are fuzzed too.
      'content-type': usually('application/json', ['application/json; charset=utf-8', 'text/plain', 'APPLICATION/JSON', '']),
      accept: usually('application/json, text/event-stream', ['text/event-stream', '*/*', '']),
      'mcp-session-id': usually(sessionId, ['', 'not-a-session', `${sessionId}x`]),
      'mcp-protocol-version': usually('2025-11-25', ['2026-07-28', '1999-01-01', '']),
    })
    .map((headers) => Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== '')));

/** `value` nine times in ten, else one of `others`. */
const usually = (value: string, others: string[]): fc.Arbitrary<string> => fc.oneof({ weight: 9, arbitrary: fc.constant(value) }, { weight: 1, arbitrary: fc.constantFrom(...others) });
