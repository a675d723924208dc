import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../log.ts';
import type { JsonRpcMessage, JsonRpcRequest } from '../protocol/jsonrpc.ts';
import { classifyMessage, rpcError, RpcErrorCode } from '../protocol/jsonrpc.ts';
import { LineSplitter } from '../protocol/line-splitter.ts';
import { readOversizedMessage } from '../protocol/oversized-message.ts';
import { MAX_NESTING_DEPTH, nestedDeeperThan, tooDeep } from '../protocol/nesting.ts';
import { LineBatcher } from '../protocol/line-batcher.ts';
import { LEGACY_PROTOCOL_VERSIONS } from '../protocol/mcp.ts';
import type { Caller } from '../protocol/call.ts';
import { Exchange, type ExchangeServices } from './exchange.ts';
import { ClientSession } from './session.ts';
import { readListenFilter } from './listen-filter.ts';
import { listen } from './listen-stream.ts';

export interface StdioFrontOptions {
  input: Readable;
  output: Writable;
  caller: Caller;
  maxMessageBytes: number;
}

/**
 * MCP over stdio, framed by hand: one JSON-RPC message per line in, one per line out. Requests are served
 * concurrently; a request carrying the 2026-07-28 envelope is served statelessly, anything else in the one
 * legacy session of this connection. Bad lines get a JSON-RPC error and the connection stays up.
 */
export function serveStdio(services: ExchangeServices, options: StdioFrontOptions, log: Logger): { closed: Promise<void> } {
  const exchange = new Exchange(services);
  const session = new ClientSession('stdio', 'legacy', options.caller, LEGACY_PROTOCOL_VERSIONS[0]);
  const inflight = new Map<string | number, AbortController>();
  const output = new LineBatcher((text) => {
    if (options.output.writable) options.output.write(text);
  });
  const write = (message: JsonRpcMessage) => output.push(JSON.stringify(message));
  session.push = write;
  exchange.opened(session);

  // A line over the limit is skipped as it passes, and answered: by the request's id when it can be read.
  const lines = new LineSplitter(options.maxMessageBytes, (line) => {
    const { id, hasMethod } = readOversizedMessage(line);
    write(rpcError(hasMethod && id !== undefined ? id : null, RpcErrorCode.INVALID_REQUEST, `message of ${line.bytes} bytes exceeds ${options.maxMessageBytes} bytes`, { code: 'GH_ERR_BODY_TOO_LARGE' }));
  });

  const onLine = (line: string) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      write(rpcError(null, RpcErrorCode.PARSE_ERROR, 'Parse error: the line is not valid JSON', { code: 'GH_ERR_PARSE' }));
      return;
    }
    const msg = classifyMessage(value);
    // Refused here, before anything walks it; only a request can be answered.
    if (msg.kind !== 'invalid' && nestedDeeperThan(value)) {
      if (msg.kind === 'request') write(tooDeep(msg.message.id));
      else log.warn(`dropped a ${msg.kind} from the client nested deeper than ${MAX_NESTING_DEPTH} levels`);
      return;
    }
    switch (msg.kind) {
      case 'invalid':
        write(rpcError(msg.id, RpcErrorCode.INVALID_REQUEST, `Invalid request: ${msg.reason}`, { code: 'GH_ERR_INVALID_REQUEST' }));
        return;
      case 'response':
        exchange.response(session, msg.message);
        return;
      case 'notification':
        exchange.notification(session, msg.message, inflight);
        return;
      case 'request': {
        const request = msg.message;
        const modern = exchange.modernSession(request, options.caller);
        if (modern && !(modern instanceof ClientSession)) {
          write(modern);
          return;
        }
        const controller = new AbortController();
        inflight.set(request.id, controller);
        if (modern && request.method === 'subscriptions/listen') return listenOnStdio(modern, request, controller);
        exchange
          .request(modern ?? session, request, controller.signal, write)
          .then((response) => response && write(response))
          .catch((err: Error) => {
            log.error('request failed unexpectedly', { method: request.method, error: err.message });
            write(rpcError(request.id, RpcErrorCode.INTERNAL_ERROR, 'internal error', { code: 'GH_ERR_INTERNAL' }));
          })
          .finally(() => inflight.delete(request.id));
      }
    }
  };

  /** A subscription on this connection, until the client cancels its listen request or goes away (see listen-stream.ts). */
  const listenOnStdio = (listener: ClientSession, request: JsonRpcRequest, controller: AbortController) => {
    const filter = readListenFilter(request.params);
    if (!filter) {
      inflight.delete(request.id);
      return write(rpcError(request.id, RpcErrorCode.INVALID_PARAMS, "Invalid params: 'notifications' is required and must be a subscription filter"));
    }
    controller.signal.addEventListener('abort', () => inflight.delete(request.id), { once: true });
    void listen(listener, request.id, filter, exchange, services.sessions, write, controller.signal).then((open) => {
      if (!open) inflight.delete(request.id);
    });
  };

  options.input.on('data', (chunk: Buffer) => {
    for (const line of lines.push(chunk)) onLine(line);
  });
  // The client closed its end of our output (EPIPE): nobody can read an answer any more, so the connection is
  // over. Reading stops too, which ends it as a closed input does.
  options.output.on('error', (err: NodeJS.ErrnoException) => {
    log.info('the client closed the output', { code: err.code });
    options.input.destroy();
  });
  const closed = new Promise<void>((resolve) => {
    const end = () => {
      for (const controller of inflight.values()) controller.abort('the client disconnected');
      session.outgoing.failAll('the client disconnected');
      exchange.closed(session);
      resolve();
    };
    options.input.once('end', end);
    options.input.once('close', end);
  });
  return { closed };
}
