// Hostile-input edges of the HTTP front (issue 10, item 14), over real HTTP: auth schemes are case-insensitive,
// only JSON is MCP (any media type spelling of it, and nothing else), and deeply nested arguments get a clear
// invalid-params error instead of a stack overflow.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { defaultConfig } from '../../src/config/load.ts';
import { MAX_NESTING_DEPTH } from '../../src/protocol/nesting.ts';

const KEY = 'k'.repeat(32);
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ auth: { apiKeys: [{ key: KEY, principal: 'alice', tenant: 'default', roles: ['approver'] }] } });
});
afterAll(async () => {
  await h?.close();
});

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });

async function post(body: string, headers: Record<string, string>, path = '/mcp'): Promise<{ status: number; json: any }> {
  const response = await request(h.url.replace('/mcp', path), { method: 'POST', body, headers: { accept: 'application/json, text/event-stream', ...headers } });
  const text = await response.body.text();
  return { status: response.statusCode, json: text ? JSON.parse(text) : undefined };
}

async function get(path: string, headers: Record<string, string>): Promise<number> {
  const response = await request(h.url.replace('/mcp', path), { method: 'GET', headers });
  await response.body.dump();
  return response.statusCode;
}

describe('Authorization schemes', () => {
  it.each(['Bearer', 'bearer', 'BEARER', 'bEaReR'])('accepts "%s <key>" on /mcp and on the approvals API', async (scheme) => {
    expect((await post(INIT, { 'content-type': 'application/json', authorization: `${scheme} ${KEY}` })).status).toBe(200);
    expect(await get('/api/approvals', { authorization: `${scheme} ${KEY}` })).toBe(200);
  });

  it('tolerates extra spaces around the scheme and the key', async () => {
    expect((await post(INIT, { 'content-type': 'application/json', authorization: `  bearer    ${KEY}  ` })).status).toBe(200);
    expect(await get('/api/approvals', { authorization: `Bearer\t${KEY}` })).toBe(200);
  });

  it('still refuses other schemes, a wrong key and a scheme glued to the key', async () => {
    for (const authorization of [`Basic ${KEY}`, `Bearer ${'x'.repeat(32)}`, `Bearer${KEY}`, KEY, 'Bearer']) {
      const refused = await post(INIT, { 'content-type': 'application/json', authorization });
      expect(refused.status, authorization).toBe(401);
      expect(refused.json.error.data.code).toBe('GH_ERR_UNAUTHORIZED');
    }
  });
});

describe('media types on /mcp', () => {
  const auth = { authorization: `Bearer ${KEY}` };

  it.each(['application/json', 'application/JSON', 'Application/Json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'APPLICATION/JSON ; charset="utf-8"'])('serves %s', async (type) => {
    const reply = await post(INIT, { ...auth, 'content-type': type });
    expect(reply.status).toBe(200);
    expect(reply.json.result.protocolVersion).toBe('2025-11-25');
  });

  it.each([
    ['a form', 'application/x-www-form-urlencoded', INIT],
    ['a form holding the request as a field', 'application/x-www-form-urlencoded', `${encodeURIComponent(INIT)}=`],
    ['plain text', 'text/plain', INIT],
    ['JSON in a text type', 'text/json', INIT],
    ['a JSON look-alike type', 'application/jsonx', INIT],
    ['a type that names JSON in a parameter', 'text/plain; x=application/json', INIT],
    ['multipart', 'multipart/form-data; boundary=x', INIT],
  ])('refuses %s with 415 and a coded JSON-RPC error', async (_, type, body) => {
    const reply = await post(body, { ...auth, 'content-type': type });
    expect(reply.status).toBe(415);
    expect(reply.json).toMatchObject({ jsonrpc: '2.0', error: { data: { code: 'GH_ERR_UNSUPPORTED_MEDIA_TYPE' } } });
  });

  it('refuses a body without a content type with 415', async () => {
    const response = await request(h.url, { method: 'POST', body: INIT, headers: { ...auth, accept: 'application/json, text/event-stream' } });
    expect(response.statusCode).toBe(415);
    expect(((await response.body.json()) as any).error.data.code).toBe('GH_ERR_UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('nesting', () => {
  const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'fx__echo' };
  const ENVELOPE = '"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}';
  /** JSON text of an object nested `levels` deep: {"a":{"a":…1…}}. Built as text: JSON.stringify itself would overflow. */
  const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
  const call = (id: number, args: string, meta = '') => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"fx__echo","arguments":${args},"_meta":{${ENVELOPE}${meta}}}}`;
  const chain = () => {
    const file = join(h.dataDir, 'audit', 'default.jsonl');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  };

  it.each([
    ['arguments nested 100,000 deep', call(41, `{"text":"x","deep":${nested(100_000)}}`)],
    ['_meta nested 100,000 deep', call(42, '{"text":"x"}', `,"deep":${nested(100_000)}`)],
    // The message is level 1, params 2, arguments 3: `deep` holding k levels reaches level 3 + k.
    ['arguments one level over the limit', call(43, `{"text":"x","deep":${nested(MAX_NESTING_DEPTH - 2)}}`)],
  ])('answers %s with -32602 GH_ERR_NESTING_TOO_DEEP, and nothing runs', async (_, body) => {
    const reply = await post(body, auth);
    expect(reply.json).toMatchObject({ jsonrpc: '2.0', id: JSON.parse(body.slice(0, body.indexOf(',"method"')) + '}').id, error: { code: -32602, data: { code: 'GH_ERR_NESTING_TOO_DEEP' } } });
  });

  it('serves arguments nested exactly to the limit, and never audited a refused message as an upstream failure', async () => {
    const reply = await post(call(44, `{"text":"fits","deep":${nested(MAX_NESTING_DEPTH - 3)}}`), auth);
    expect(reply.json.result.content[0].text).toBe('echo: fits');
    await waitFor(() => chain().includes('"job.succeeded"'), 'the served call to be audited');
    expect(chain()).not.toContain('GH_ERR_UPSTREAM_UNAVAILABLE');
    expect(chain()).not.toContain('GH_ERR_INTERNAL');
    expect(chain().match(/"job\.submitted"/g)).toHaveLength(1);
  });
});

describe('sessions per caller', () => {
  it('holds at most limits.maxSessionsPerCaller 2025 sessions of one caller: a new one ends the least recently used', async () => {
    const capped = await startHarness({ limits: { ...defaultConfig().limits, maxSessionsPerCaller: 3 } });
    try {
      const post = (body: unknown, session?: string) =>
        fetch(capped.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' } : {}) }, body: JSON.stringify(body) });
      const open = async () => {
        const response = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'many', version: '1' } } });
        await response.arrayBuffer();
        return response.headers.get('mcp-session-id')!;
      };
      const ping = async (session: string) => {
        const response = await post({ jsonrpc: '2.0', id: 2, method: 'ping' }, session);
        await response.arrayBuffer();
        return response.status;
      };
      const [a, b, c] = [await open(), await open(), await open()];
      expect(await ping(a)).toBe(200); // a is now used more recently than b
      const d = await open();
      expect(await ping(b)).toBe(404); // the least recently used gave way
      for (const s of [a, c, d]) expect(await ping(s)).toBe(200);
    } finally {
      await capped.close();
    }
  });
});
