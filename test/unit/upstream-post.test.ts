import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { post } from '../../adapters/mcp/upstream-post.ts';

let server: Server | undefined;
let agent: Agent | undefined;
afterEach(async () => {
  await agent?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = agent = undefined;
});

/** A real HTTP server on a free loopback port, and an undici Agent with keep-alive to it. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  agent = new Agent({ keepAliveTimeout: 30_000, connections: 4 });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}';

describe('one POST to an HTTP upstream', () => {
  it('reads a JSON answer whole, with its status and lower-cased headers, and sends the body and headers it was given', async () => {
    let received = '';
    let sessionHeader: string | undefined;
    const origin = await serve((req, res) => {
      sessionHeader = req.headers['mcp-session-id'] as string;
      req.setEncoding('utf8').on('data', (c: string) => (received += c)).on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': 's-1' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
      });
    });
    const answer = await post(agent!, { origin, path: '/mcp', headers: { 'content-type': 'application/json', 'mcp-session-id': 's-0' }, body }, 1024).answer;
    expect(answer).toEqual({ statusCode: 200, headers: expect.objectContaining({ 'content-type': 'application/json', 'mcp-session-id': 's-1' }), text: '{"jsonrpc":"2.0","id":1,"result":{}}' });
    expect(received).toBe(body);
    expect(sessionHeader).toBe('s-0');
  });

  it('stops reading an answer over the limit and says how many bytes it had read', async () => {
    const origin = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('x'.repeat(5000)));
    const answer = await post(agent!, { origin, path: '/mcp', headers: {}, body }, 1000).answer;
    expect(typeof answer.text).toBe('object');
    expect((answer.text as { bytes: number }).bytes).toBeGreaterThan(1000);
  });

  it('hands an SSE answer over as a stream, event by event as the server sends them', async () => {
    let sendSecond: () => void = () => undefined;
    const origin = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: 1\ndata: {"first":true}\n\n');
      sendSecond = () => res.end('id: 2\ndata: {"second":true}\n\n');
    });
    const answer = await post(agent!, { origin, path: '/mcp', headers: {}, body }, 1024).answer;
    expect(answer.text).toBeUndefined();
    const chunks: string[] = [];
    for await (const chunk of answer.stream!) {
      chunks.push(String(chunk));
      if (chunks.length === 1) sendSecond(); // the first event arrived before the server sent the second
    }
    expect(chunks.join('')).toBe('id: 1\ndata: {"first":true}\n\nid: 2\ndata: {"second":true}\n\n');
  });

  it('drops an exchange the upstream never answers: the connection is closed, so a hung upstream cannot pin it', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    const origin = await serve((req) => {
      req.socket.once('close', closed);
      arrived(); // and never answers
    });
    const exchange = post(agent!, { origin, path: '/mcp', headers: {}, body }, 1024);
    await requestArrived;
    exchange.abort(new Error('timed out'));
    await expect(exchange.answer).rejects.toThrow('timed out');
    await serverSawClose;
  });

  it('drops an SSE answer when its stream is destroyed before the end', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => (closed = resolve));
    const origin = await serve((req, res) => {
      req.socket.once('close', closed);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n'); // and never ends
    });
    const answer = await post(agent!, { origin, path: '/mcp', headers: {}, body }, 1024).answer;
    answer.stream!.destroy();
    await serverSawClose;
  });
});
