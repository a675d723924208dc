import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.ts';
import type { ClientSession } from './session.ts';
import type { Exchange, ExchangeServices } from './exchange.ts';
import { ENVELOPE, SERVER_INFO } from './era.ts';
import { filterAccepts, tagged, type ListenFilter } from './listen-filter.ts';

/**
 * A `subscriptions/listen` subscription (2026-07-28): the modern client's one way to hear what changes outside
 * its requests, on an HTTP response stream or a stdio connection. The subscription's session joins the open
 * sessions, so the broadcasts that reach a 2025 session (list changes, resources/updated for what it watches)
 * reach it too, kept to what the client asked for and tagged with the subscription id (the listen request's id).
 * Its resource URIs are subscribed as `resources/subscribe` was: governed, one by one; a URI the policy refuses is
 * left out of the acknowledgement, which is the first message sent. It lasts until `signal` aborts (the client
 * goes away or cancels the listen request), which lets its subscriptions go.
 *
 * Returns false when nothing was left to deliver: the listen request has been answered and the stream may end.
 */
export async function listen(
  session: ClientSession,
  id: JsonRpcId,
  asked: ListenFilter,
  exchange: Exchange,
  sessions: ExchangeServices['sessions'],
  send: (message: JsonRpcMessage) => void,
  signal: AbortSignal,
): Promise<boolean> {
  // Joined before the subscriptions are made, so that leaving lets every one of them go.
  sessions.add(session);
  const leave = () => sessions.remove(session);
  if (signal.aborted) return (leave(), false);
  signal.addEventListener('abort', leave, { once: true });
  const watched: string[] = [];
  for (const uri of asked.resourceSubscriptions ?? []) if (await exchange.subscribe(session, uri, signal)) watched.push(uri);
  if (signal.aborted) return false;
  const { resourceSubscriptions: _, ...lists } = asked;
  const honoured: ListenFilter = { ...lists, ...(watched.length > 0 ? { resourceSubscriptions: watched } : {}) };

  send({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: honoured, _meta: { [ENVELOPE.subscriptionId]: id } } });
  if (Object.keys(honoured).length === 0) {
    // Nothing to deliver: the listen request is answered at once.
    send({ jsonrpc: '2.0', id, result: { resultType: 'complete', _meta: { [ENVELOPE.subscriptionId]: id, [ENVELOPE.serverInfo]: SERVER_INFO } } });
    signal.removeEventListener('abort', leave);
    leave();
    return false;
  }
  session.push = (message) => {
    if (!signal.aborted && filterAccepts(honoured, message)) send(tagged(message, id));
  };
  return true;
}
