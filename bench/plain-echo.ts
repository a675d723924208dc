/**
 * A JSON-RPC echo with no MCP library, for bench/client-floors.ts: it answers every request line (stdio, NDJSON) or
 * POST (http, JSON with content-length, keep-alive) with a small tool result, so that what the client process spends
 * is the transport's and its own, not a server's.
 * Run: node --import tsx bench/plain-echo.ts stdio|http   (http prints `listening <port>`, loopback only)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const answer = (id: unknown) => JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'echo: hi' }] } });

if (process.argv[2] === 'http') {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = answer((JSON.parse(Buffer.concat(chunks).toString()) as { id: unknown }).id);
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      response.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as AddressInfo).port}`));
} else {
  let pending = '';
  process.stdin.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    let out = '';
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
      out += `${answer((JSON.parse(pending.slice(0, end)) as { id: unknown }).id)}\n`;
      pending = pending.slice(end + 1);
    }
    if (out) process.stdout.write(out);
  });
}
