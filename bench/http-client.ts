import { Pool } from 'undici';

export type Era = 'legacy' | 'modern';

const MODERN = '2026-07-28';
const LEGACY = '2025-11-25';
const ENVELOPE = JSON.stringify({
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'gatehouse-bench', version: '1.0.0' },
});

interface RpcReply {
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/**
 * A deliberately lean MCP client: raw JSON-RPC POSTs over an undici keep-alive pool, so the load generator's
 * own cost stays small next to the servers it measures. The same client drives every HTTP target.
 *   legacy  initialize once, then every POST carries Mcp-Session-Id (the 2025 sessionful wire)
 *   modern  no handshake; every request carries the 2026-07-28 `_meta` envelope and its headers
 */
export class McpHttpClient {
  private readonly pool: Pool;
  private readonly path: string;
  private nextId = 1;
  private headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

  constructor(
    url: string,
    private readonly era: Era,
    connections: number,
  ) {
    const parsed = new URL(url);
    this.pool = new Pool(parsed.origin, { connections, pipelining: 1, keepAliveTimeout: 120_000 });
    this.path = parsed.pathname;
  }

  async connect(): Promise<void> {
    if (this.era === 'modern') {
      this.headers = { ...this.headers, 'mcp-protocol-version': MODERN };
      return;
    }
    const init = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"${LEGACY}","capabilities":{},"clientInfo":{"name":"gatehouse-bench","version":"1.0.0"}}}`;
    const res = await this.pool.request({ path: this.path, method: 'POST', headers: this.headers, body: init });
    const body = await res.body.text();
    const reply = parseReply(res.headers['content-type'], body);
    if (res.statusCode !== 200 || !reply.result) throw new Error(`initialize failed: HTTP ${res.statusCode} ${body.slice(0, 300)}`);
    const session = res.headers['mcp-session-id'];
    this.headers = { ...this.headers, 'mcp-protocol-version': String(reply.result.protocolVersion ?? LEGACY), ...(typeof session === 'string' ? { 'mcp-session-id': session } : {}) };
    const ack = await this.pool.request({ path: this.path, method: 'POST', headers: this.headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
    await ack.body.dump();
  }

  async listTools(): Promise<string[]> {
    const reply = await this.rpc('tools/list', undefined, '{}');
    if (!reply.result) throw new Error(`tools/list failed: ${reply.error?.message}`);
    return (reply.result.tools as { name: string }[]).map((t) => t.name);
  }

  /** One echo call; throws unless the tool really ran, so an error fast path can never pass for speed. */
  async echo(tool: string): Promise<void> {
    const reply = await this.rpc('tools/call', tool, `{"name":"${tool}","arguments":{"text":"hi"}}`);
    if (!reply.result || reply.result.isError) throw new Error(`${tool} failed: ${JSON.stringify(reply.error ?? reply.result).slice(0, 300)}`);
  }

  /** One call of any tool; `args` is the arguments' JSON. Throws unless the tool answered without error. */
  async call(tool: string, args: string): Promise<Record<string, unknown>> {
    const reply = await this.rpc('tools/call', tool, `{"name":"${tool}","arguments":${args}}`);
    if (!reply.result || reply.result.isError) throw new Error(`${tool} failed: ${JSON.stringify(reply.error ?? reply.result).slice(0, 300)}`);
    return reply.result;
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async rpc(method: string, name: string | undefined, params: string): Promise<RpcReply> {
    const id = this.nextId++;
    let headers = this.headers;
    let body: string;
    if (this.era === 'modern') {
      headers = { ...headers, 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}) };
      // Splice the envelope into the params object: `{...}` → `{...,"_meta":{...}}`.
      const withMeta = params === '{}' ? `{"_meta":${ENVELOPE}}` : `${params.slice(0, -1)},"_meta":${ENVELOPE}}`;
      body = `{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${withMeta}}`;
    } else {
      body = `{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${params}}`;
    }
    const res = await this.pool.request({ path: this.path, method: 'POST', headers, body });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${method}: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
    return parseReply(res.headers['content-type'], text);
  }
}

/** A JSON body, or the last `data:` line of an SSE body (mcp-proxy always streams). */
function parseReply(contentType: string | string[] | undefined, body: string): RpcReply {
  if (String(contentType).startsWith('text/event-stream')) {
    const at = body.lastIndexOf('\ndata: ');
    const start = at >= 0 ? at + 7 : body.startsWith('data: ') ? 6 : -1;
    if (start < 0) throw new Error(`an SSE reply without data: ${body.slice(0, 300)}`);
    const end = body.indexOf('\n', start);
    return JSON.parse(body.slice(start, end < 0 ? undefined : end)) as RpcReply;
  }
  return JSON.parse(body) as RpcReply;
}
