import type { JsonRpcId, JsonRpcNotification } from '../protocol/jsonrpc.ts';
import type { Caller, Era } from '../protocol/call.ts';
import { LOG_LEVELS, type LogLevel } from '../protocol/mcp.ts';
import { ClientRequests } from './client-requests.ts';

/**
 * One client connection's state. A legacy (2025) client has one for its whole session; a modern (2026-07-28)
 * request gets a throwaway one built from its `_meta` envelope, since that era keeps no state between requests.
 */
export class ClientSession {
  protocolVersion: string;
  clientInfo: { name: string; version: string } | undefined;
  capabilities: Record<string, unknown> = {};
  logLevel: LogLevel | undefined;
  readonly subscriptions = new Set<string>();
  lastSeen = Date.now();
  /** Requests sent to this client and awaiting its answer. */
  readonly outgoing: ClientRequests;
  /**
   * Sends a notification not tied to a request (list_changed, resources/updated) on the session's own stream, or
   * over the bus to the replica that holds it (`relayed`); unset when nothing listens.
   */
  push: ((message: JsonRpcNotification) => void) | undefined;
  /** Set while `push` relays to another replica: broadcasts skip the session, since that replica sees them too. */
  relayed = false;

  readonly caller: Caller;

  /** `replica`: this process's node id, named in the ids of the requests it sends the client (see `askedBy`). */
  constructor(
    readonly id: string,
    readonly era: Era,
    caller: Caller,
    protocolVersion: string,
    replica?: string,
  ) {
    this.protocolVersion = protocolVersion;
    this.outgoing = new ClientRequests(`gh-${id.slice(-6)}${replica ? `.${replica}` : ''}`);
    // A 2025 session is something jobs and audit records can name; a modern request's throwaway one is not.
    this.caller = era === 'legacy' ? { ...caller, sessionId: id } : { ...caller };
  }

  /** Whether the client accepts a server→client request of this method (from its declared capabilities). */
  canAsk(method: string): boolean {
    if (this.era !== 'legacy') return false;
    if (method === 'elicitation/create') return this.capabilities.elicitation !== undefined;
    if (method === 'sampling/createMessage') return this.capabilities.sampling !== undefined;
    if (method === 'roots/list') return this.capabilities.roots !== undefined;
    return method === 'ping';
  }

  wantsLog(level: string): boolean {
    // A modern client asks for logs per request through its envelope; without that it gets none.
    if (!this.logLevel) return this.era === 'legacy';
    return LOG_LEVELS.indexOf(level as LogLevel) >= LOG_LEVELS.indexOf(this.logLevel);
  }
}

/**
 * The replica that sent the client the request an answer is for: a 2025 HTTP session's answers may reach any
 * replica, and only the one that asked can settle them.
 */
export function askedBy(id: JsonRpcId | null): string | undefined {
  return typeof id === 'string' ? /^gh-[^.]*\.(.+)-\d+$/.exec(id)?.[1] : undefined;
}
