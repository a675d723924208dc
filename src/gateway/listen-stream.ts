import type { ServerResponse } from 'node:http';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.ts';
import type { ClientSession } from './session.ts';
import type { Exchange, ExchangeServices } from './exchange.ts';
import { ENVELOPE, SERVER_INFO } from './era.ts';
import { filterAccepts, tagged, type ListenFilter } from './listen-filter.ts';

/** An idle stream's keep-alive comment, so that proxies do not time it out (as the SDK's streams do). */
const KEEP_ALIVE_MS = 15_000;

/**
 * A `subscriptions/listen` stream (2026-07-28): the modern client's one way to hear what changes outside its
 * requests. The stream's session joins the open sessions, so the broadcasts that reach a 2025 session's GET
 * stream (list changes, resources/updated for what it watches) reach it too, kept to what the client asked for
 * and tagged with the subscription id (the listen request's id). Its resource URIs are subscribed as
 * `resources/subscribe` was: governed, one by one; a URI the policy refuses is left out of the acknowledgement.
 * The acknowledgement comes first; the stream lasts until the client goes away, which lets its subscriptions go.
 */
export async function serveListenStream(
  raw: ServerResponse,
  session: ClientSession,
  id: JsonRpcId,
  asked: ListenFilter,
  exchange: Exchange,
  sessions: ExchangeServices['sessions'],
  write: (raw: ServerResponse, message: JsonRpcMessage) => void,
): Promise<void> {
  const gone = new AbortController();
  raw.on('close', () => gone.abort('the client went away'));
  // Joined before the subscriptions are made, so that leaving (on close) lets every one of them go.
  sessions.add(session);
  raw.on('close', () => sessions.remove(session));
  const watched: string[] = [];
  for (const uri of asked.resourceSubscriptions ?? []) if (await exchange.subscribe(session, uri, gone.signal)) watched.push(uri);
  if (gone.signal.aborted) return;
  const { resourceSubscriptions: _, ...lists } = asked;
  const honoured: ListenFilter = { ...lists, ...(watched.length > 0 ? { resourceSubscriptions: watched } : {}) };

  raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  write(raw, { jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: honoured, _meta: { [ENVELOPE.subscriptionId]: id } } });
  if (Object.keys(honoured).length === 0) {
    // Nothing to deliver: the stream ends at once, with the listen request's answer.
    write(raw, { jsonrpc: '2.0', id, result: { resultType: 'complete', _meta: { [ENVELOPE.subscriptionId]: id, [ENVELOPE.serverInfo]: SERVER_INFO } } });
    raw.end();
    return;
  }
  session.push = (message) => {
    if (!raw.destroyed && filterAccepts(honoured, message)) write(raw, tagged(message, id));
  };
  const keepAlive = setInterval(() => raw.write(': keepalive\n\n'), KEEP_ALIVE_MS);
  keepAlive.unref();
  raw.on('close', () => clearInterval(keepAlive));
}
