/**
 * The upstream under test: one trivial `echo` tool on the MCP SDK v2's own McpServer, served either way.
 *   stdio  StdioServerTransport (what Gatehouse and mcp-proxy front in their natural deployment)
 *   http   the SDK's sessionful Streamable HTTP server: NodeStreamableHTTPServerTransport in JSON response
 *          mode on node:http, one McpServer per session, the shape of the SDK's own examples. It prints
 *          `listening <url>` once bound (port 0, loopback only).
 * Run: node --import tsx bench/echo-server.ts stdio|http
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { McpServer } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import * as z from 'zod';

function echoServer(): McpServer {
  const server = new McpServer({ name: 'bench-echo', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echoes its text', inputSchema: z.object({ text: z.string() }), annotations: { readOnlyHint: true } },
    ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text}` }] }),
  );
  return server;
}

async function serveHttp(): Promise<void> {
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  const http = createServer((req, res) => {
    void (async () => {
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? sessions.get(id) : undefined;
      if (!transport && req.method === 'POST' && typeof id !== 'string') {
        transport = new NodeStreamableHTTPServerTransport({
          sessionIdGenerator: randomUUID,
          enableJsonResponse: true,
          onsessioninitialized: (sid) => void sessions.set(sid, transport!),
        });
        transport.onclose = () => void (transport!.sessionId && sessions.delete(transport!.sessionId));
        await echoServer().connect(transport);
      }
      if (!transport) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
        return;
      }
      await transport.handleRequest(req as IncomingMessage, res);
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500).end(err.message);
    });
  });
  http.listen(0, '127.0.0.1', () => {
    const address = http.address();
    if (address && typeof address === 'object') console.log(`listening http://127.0.0.1:${address.port}/mcp`);
  });
}

const mode = process.argv[2];
if (mode === 'stdio') await echoServer().connect(new StdioServerTransport());
else if (mode === 'http') await serveHttp();
else {
  console.error('usage: echo-server.ts stdio|http');
  process.exit(2);
}
