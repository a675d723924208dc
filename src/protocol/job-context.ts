import type { Constraints } from './constraints.ts';

/**
 * What an executor needs to run a job, stored at the job's `ctx:` pointer. The bus carries only the pointer,
 * so arguments never travel in envelopes and never reach the audit log.
 */
export interface JobContext {
  server: string;
  /** The upstream's own tool name (not namespaced). */
  tool: string;
  arguments: Record<string, unknown>;
  constraints: Constraints;
  /** The client's `_meta` minus the progress token: unknown keys pass through to the upstream. */
  meta?: Record<string, unknown>;
  /** Whether the client wants progress; the executor then asks the upstream for it. */
  wantsProgress: boolean;
  /**
   * A request other than `tools/call` (a resource read, a prompt, a completion): sent as is, with `_meta`. `tool` is
   * then its method and `arguments` what the constraints check.
   */
  request?: { method: string; params: Record<string, unknown> };
  /** What the client declared it can answer: the envelope's clientCapabilities a 2026-07-28 upstream hears. */
  clientCapabilities?: Record<string, unknown>;
  /**
   * Which round of the job this context is for (unset: the first): a later one follows an upstream's `input_required`.
   * The job message carries its round too (`stepIndex`), and an executor runs a message only with its own round's context.
   */
  round?: number;
  /** A later round: the client's answers and the upstream's own state, sent with the call. */
  input?: { inputResponses?: Record<string, unknown>; requestState?: string };
}

/** How long payloads stay in the store after a job is submitted: long enough for a held approval and a run. */
export const PAYLOAD_TTL_MS = 30 * 60_000;
