import type { JsonRpcErrorObject } from '../protocol/jsonrpc.ts';
import type { CallToolResult } from '../protocol/mcp.ts';

/** Who is calling: resolved by the front from an API key, or the local user on stdio. */
export interface Caller {
  principal: string;
  tenant: string;
  sessionId?: string;
}

/**
 * How the core answers the client while a request runs, whatever the transport and era. The HTTP front
 * upgrades its response to SSE the first time something is sent here before the result.
 */
export interface ReplyChannel {
  /** Aborts when the client cancels the request or goes away. */
  readonly signal: AbortSignal;
  /** The client's progress token; progress may be sent only when there is one. */
  readonly progressToken: string | number | undefined;
  notify(method: string, params: Record<string, unknown>): void;
  /** Sends the client a request tied to this one (legacy era, capable clients only). */
  readonly ask: ((method: string, params: Record<string, unknown> | undefined, signal: AbortSignal) => Promise<Record<string, unknown>>) | undefined;
}

/** A `tools/call`, normalized: what the job path sees regardless of where it came from. */
export interface NormalizedCall {
  caller: Caller;
  name: string;
  arguments: Record<string, unknown>;
  /** The client's `_meta` without the progress token and protocol envelope: passed through to the upstream. */
  meta: Record<string, unknown> | undefined;
  reply: ReplyChannel;
}

/** A call ends as a tool result the model reads, or as a JSON-RPC error for a malformed request. */
export type CallOutcome = { result: CallToolResult } | { error: JsonRpcErrorObject };
