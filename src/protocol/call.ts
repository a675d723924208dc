import type { Context } from '@opentelemetry/api';
import type { JsonRpcErrorObject } from './jsonrpc.ts';
import type { CallToolResult } from './mcp.ts';

/** Which MCP revision a client speaks: 2025 (`legacy`, stateful sessions) or 2026-07-28 (`modern`, stateless). */
export type Era = 'legacy' | 'modern';

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
  /** The request's span (OpenTelemetry), which the spans of the call it makes start under; unset for a call nobody made. */
  readonly trace?: Context;
  /**
   * The OAuth access token this request was admitted with (`auth.oauth`), checked: what token exchange turns into
   * an upstream's token on the caller's behalf. Held by the request alone, never by its session or job.
   */
  readonly accessToken?: string;
  /** The client's progress token; progress may be sent only when there is one. */
  readonly progressToken: string | number | undefined;
  notify(method: string, params: Record<string, unknown>): void;
  /** Sends the client a request tied to this one (legacy era, capable clients only). */
  readonly ask: ((method: string, params: Record<string, unknown> | undefined, signal: AbortSignal) => Promise<Record<string, unknown>>) | undefined;
  /**
   * Sends the client a notification after this request has been answered, on its session's own stream (2025
   * sessions; dropped while nothing listens). Unset where there is no session to reach later.
   */
  readonly later?: (method: string, params: Record<string, unknown>) => void;
}

/** What the client negotiated: which approval channel can reach its human depends on it. */
export interface ClientFacts {
  era: Era;
  /** The declared capabilities: `initialize`'s (2025) or this request's envelope (2026-07-28). */
  capabilities: Record<string, unknown>;
  /** `clientInfo.name`, which picks a per-client hold budget. */
  name?: string;
  /** `clientInfo.version`, recorded in `job.submitted` for the console's sessions. */
  version?: string;
}

/** What a 2026-07-28 client sends back when it retries a call that answered `input_required`. */
export interface CallInput {
  requestState?: unknown;
  inputResponses?: Record<string, unknown>;
}

/** How a call running as a task (2025-11-25 tasks) reports that it waits for a human, and that it runs again. */
export interface TaskHooks {
  waiting(message: string): void;
  working(): void;
  /** The client answers an upstream's input requests itself (2026-07-28: a call that became a task only to wait). */
  relaysInput?: boolean;
}

/** A `tools/call`, normalized: what the job path sees regardless of where it came from. */
export interface NormalizedCall {
  caller: Caller;
  name: string;
  arguments: Record<string, unknown>;
  /** The client's `_meta` without the progress token and protocol envelope: passed through to the upstream. */
  meta: Record<string, unknown> | undefined;
  reply: ReplyChannel;
  /** Unset: a 2025 client that declared nothing. */
  client?: ClientFacts;
  /** Set on a 2026-07-28 retry (`requestState`, `inputResponses`). */
  input?: CallInput;
  /** Set when the gateway itself runs a call on approval (`onApprove: execute`): the approval it runs under. */
  executeFor?: string;
  /** Set when the call runs as a task: the task, not the request, waits for an approval. */
  task?: TaskHooks;
}

/** The 2026-07-28 answer that asks the client for input (here: an approval) before the call can go on. */
export interface InputRequiredResult {
  resultType: 'input_required';
  inputRequests?: Record<string, { method: string; params?: Record<string, unknown> }>;
  requestState?: string;
  [key: string]: unknown;
}

/**
 * A call ends as a tool result the model reads, or as a JSON-RPC error for a malformed request; a 2026-07-28 call
 * waiting for an approval answers `input_required` (never with an `error`, which keeps `'result' in` checks simple).
 */
export type CallOutcome = { result: CallToolResult } | { inputRequired: InputRequiredResult; error?: never } | { error: JsonRpcErrorObject };
