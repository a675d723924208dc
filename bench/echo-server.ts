/**
 * The upstream under test: one trivial `echo` tool on the MCP SDK v2's own McpServer, served either way (and
 * `big`, a text of `bytes` bytes, for bench/large-result.ts).
 *   stdio  StdioServerTransport (what Gatehouse and mcp-proxy front in their natural deployment)
 *   stdio-modern  serveStdio: the same server, in 2026-07-28 to a client that asks `server/discover` first (Gatehouse)
 *   http   the SDK's sessionful Streamable HTTP server: NodeStreamableHTTPServerTransport in JSON response
 *          mode on node:http, one McpServer per session, the shape of the SDK's own examples. It prints
 *          `listening <url>` once bound (port 0, loopback only).
 *   handler  the SDK's dual-era entry, createMcpHandler on node:http: a fresh McpServer per request, the
 *          direct baseline for 2026-07-28 (stateless, `_meta` envelope) clients.
 * Run: node --import tsx bench/echo-server.ts stdio|stdio-modern|http|handler
 */
import { randomUUID } from 'node:crypto';
import { createServer, type RequestListener } from 'node:http';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { serveStdio, StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { NodeStreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import * as z from 'zod';

function echoServer(): McpServer {
  const server = new McpServer({ name: 'bench-echo', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echoes its text', inputSchema: z.object({ text: z.string() }), annotations: { readOnlyHint: true } },
    ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text}` }] }),
  );
  // The large-result bench (bench/large-result.ts): one text of `bytes` bytes.
  server.registerTool(
    'big',
    { description: 'Returns a text of the given size', inputSchema: z.object({ bytes: z.number().int().min(1) }), annotations: { readOnlyHint: true } },
    ({ bytes }) => ({ content: [{ type: 'text', text: 'x'.repeat(bytes) }] }),
  );
  return server;
}

/** The SDK's sessionful legacy server: a transport and an McpServer per session, JSON responses. */
function sessionfulHandler(): RequestListener {
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  return (req, res) => {
    void (async () => {
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? sessions.get(id) : undefined;
      if (!transport && req.method === 'POST' && typeof id !== 'string') {
        const created = new NodeStreamableHTTPServerTransport({
          sessionIdGenerator: randomUUID,
          enableJsonResponse: true,
          onsessioninitialized: (sid) => void sessions.set(sid, created),
        });
        created.onclose = () => void (created.sessionId && sessions.delete(created.sessionId));
        await echoServer().connect(created);
        transport = created;
      }
      if (!transport) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
        return;
      }
      await transport.handleRequest(req, res);
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500).end(err.message);
    });
  };
}

function listen(handler: RequestListener): void {
  // Our stdin is a pipe from the benchmark: when it closes, the benchmark is gone, even if it was SIGKILLed.
  process.stdin.resume().once('end', () => process.exit(0));
  const http = createServer(handler);
  http.listen(0, '127.0.0.1', () => {
    const address = http.address();
    if (address && typeof address === 'object') console.log(`listening http://127.0.0.1:${address.port}/mcp`);
  });
}

const mode = process.argv[2];
if (mode === 'stdio') await echoServer().connect(new StdioServerTransport());
else if (mode === 'stdio-modern') serveStdio(() => echoServer());
else if (mode === 'http') listen(sessionfulHandler());
else if (mode === 'handler') {
  const node = toNodeHandler(createMcpHandler(() => echoServer()));
  listen((req, res) => void node(req, res));
} else {
  console.error('usage: echo-server.ts stdio|stdio-modern|http|handler');
  process.exit(2);
}
