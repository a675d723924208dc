/**
 * The error catalogue. Every failure Gatehouse reports carries one of these stable codes; tests assert on the
 * code, never on message text. `retryable` says whether trying again could succeed (the scheduler also needs
 * the tool to be idempotent before it retries).
 */
export const ERROR_CATALOGUE = {
  GH_ERR_USAGE: { retryable: false, summary: 'bad command-line usage' },
  GH_ERR_CONFIG_INVALID: { retryable: false, summary: 'the config file is invalid' },
  GH_ERR_POLICY_INVALID: { retryable: false, summary: 'a policy file is invalid' },
  GH_ERR_DATA_CORRUPT: { retryable: false, summary: 'a file in the data dir is corrupt' },
  GH_ERR_PARSE: { retryable: false, summary: 'the message is not valid JSON' },
  GH_ERR_INVALID_REQUEST: { retryable: false, summary: 'the message is not a valid JSON-RPC request' },
  GH_ERR_METHOD_NOT_FOUND: { retryable: false, summary: 'unknown method' },
  GH_ERR_BODY_TOO_LARGE: { retryable: false, summary: 'the message exceeds the size limit' },
  GH_ERR_NESTING_TOO_DEEP: { retryable: false, summary: 'the message nests objects and arrays deeper than the limit (64 levels)' },
  GH_ERR_UNSUPPORTED_MEDIA_TYPE: { retryable: false, summary: 'an MCP message over HTTP must be application/json' },
  GH_ERR_UNAUTHORIZED: { retryable: false, summary: 'missing or invalid credentials' },
  GH_ERR_AUTH_SERVER_UNAVAILABLE: { retryable: true, summary: "the OAuth authorization server (its metadata, keys or introspection) could not be reached, so the token is refused" },
  GH_ERR_CALLER_TOKEN_REQUIRED: { retryable: false, summary: 'the upstream takes calls only on a caller\'s behalf (upstreams.<name>.oauth.grant: token-exchange), and this caller presented no OAuth access token to exchange (an API key, the local user, or a call Gatehouse runs unattended)' },
  GH_ERR_FORBIDDEN_ORIGIN: { retryable: false, summary: 'Host or Origin not allowed' },
  GH_ERR_FORBIDDEN: { retryable: false, summary: "authenticated, but not allowed here: an API key without the approver role, or another tenant's approval" },
  GH_ERR_CSRF: { retryable: false, summary: 'a form post without a valid CSRF token, or from another origin' },
  GH_ERR_SESSION_NOT_FOUND: { retryable: false, summary: 'unknown or expired session' },
  GH_ERR_UNKNOWN_TOOL: { retryable: false, summary: 'no such tool' },
  GH_ERR_TOOL_QUARANTINED: { retryable: false, summary: 'the tool\'s definition changed since it was pinned, or the poisoning scan flagged it; it is not called until an operator accepts it (`gatehouse tools accept`)' },
  GH_ERR_PIN_NOT_FOUND: { retryable: false, summary: 'no pinned tool of that name (`gatehouse tools pins` lists them)' },
  GH_ERR_PIN_NOT_CHANGED: { retryable: false, summary: "the tool's definition has not changed since it was pinned: there is nothing to accept or reject" },
  GH_ERR_PIN_STALE: { retryable: false, summary: 'the change of a tool definition recorded now is not the one the operator reviewed (another replica saw another definition since): review the diff again' },
  GH_ERR_INVALID_ARGUMENTS: { retryable: false, summary: "the arguments fail the tool's input schema" },
  GH_ERR_POLICY_DENIED: { retryable: false, summary: 'denied by policy' },
  GH_ERR_ARGS_TOO_LARGE: { retryable: false, summary: "the arguments exceed the policy's maxArgBytes" },
  GH_ERR_PATH_DENIED: { retryable: false, summary: 'a path argument lies outside what the policy allows' },
  GH_ERR_EGRESS_DENIED: { retryable: false, summary: 'a URL argument (or the upstream itself) points to a host the policy does not allow' },
  GH_ERR_OUTBOUND_DENIED: { retryable: false, summary: 'the SSRF guard refused a connection Gatehouse itself would open (an HTTP upstream, webhook, audit sink or authorization server): its host is, or resolves to, a loopback, private, link-local or metadata address the config does not allow (outbound.allowPrivate)' },
  GH_ERR_THROTTLED: { retryable: true, summary: "over a throttle rule's rate; retry after retryAfterMs" },
  GH_ERR_SESSION_QUOTA: { retryable: false, summary: "the session has used up a rule's maxCallsPerSession" },
  GH_ERR_REPEATED_CALL: { retryable: false, summary: "the same tool with the same arguments, more often than a rule's repeat allows within its window (a loop)" },
  GH_ERR_BUDGET_EXHAUSTED: { retryable: false, summary: "the session (or the principal, today) has used up a rule's budget of calls, output bytes, upstream time or distinct tools" },
  GH_ERR_KERNEL_UNAVAILABLE: { retryable: true, summary: 'the safety kernel could not decide' },
  GH_ERR_APPROVAL_PENDING: { retryable: true, summary: 'waiting for a human approval' },
  GH_ERR_APPROVAL_DENIED: { retryable: false, summary: 'the approval was denied' },
  GH_ERR_APPROVAL_EXPIRED: { retryable: false, summary: 'the approval expired' },
  GH_ERR_ERA_UNTRANSLATABLE: { retryable: false, summary: 'the request has no equivalent in the MCP revision the other side speaks (a 2025 subscription or server-to-client request meeting a 2026-07-28 peer, or an input request the client declared no capability for)' },
  GH_ERR_REQUEST_STATE_INVALID: { retryable: false, summary: 'the requestState of an MRTR retry is forged, altered or expired' },
  GH_ERR_TASK_UNKNOWN: { retryable: false, summary: "the task id of a 2026-07-28 tasks request is not one this caller was given (another caller's, altered, or made up)" },
  GH_ERR_APPROVAL_NOT_FOUND: { retryable: false, summary: 'no such approval' },
  GH_ERR_APPROVAL_INVALID_STATE: { retryable: false, summary: 'the approval was already decided (or used, or withdrawn) and cannot make that transition' },
  GH_ERR_APPROVAL_MISMATCH: { retryable: false, summary: 'the approval was granted for another call (other arguments, tool, caller or tenant)' },
  GH_ERR_APPROVAL_STALE: { retryable: false, summary: "the tool's definition changed since the approval was asked for; calling again asks anew" },
  GH_ERR_APPROVAL_EDIT_INVALID: { retryable: false, summary: 'edited arguments sent with an approve were refused: not a JSON object, over 1 MiB, empty, or the approval needs more than one approver' },
  GH_ERR_GRANT_INVALID: { retryable: false, summary: 'a grant asked for with an approval was refused: its CEL condition does not compile, the scope or duration (15 min to 8 h) is out of bounds, a session grant has no session, or the approval needs more than one approver' },
  GH_ERR_GRANT_NOT_FOUND: { retryable: false, summary: 'no grant of that id in your tenant (`gatehouse approvals grants` lists them)' },
  GH_ERR_APPROVAL_LINK_INVALID: { retryable: false, summary: "an approval link's token is altered, or belongs to another approval" },
  GH_ERR_APPROVAL_LINK_USED: { retryable: false, summary: "the approval's action link was already used (each approval's links work once)" },
  GH_ERR_APPROVER_NOT_ALLOWED: { retryable: false, summary: "the actor is not among the approval's approvers" },
  GH_ERR_SELF_APPROVAL_FORBIDDEN: { retryable: false, summary: 'the policy does not let the caller approve their own call' },
  GH_ERR_UPSTREAM_UNAVAILABLE: { retryable: true, summary: 'the upstream MCP server is not reachable' },
  GH_ERR_UPSTREAM_TIMEOUT: { retryable: true, summary: 'the upstream did not answer in time' },
  GH_ERR_UPSTREAM_ERROR: { retryable: false, summary: 'the upstream answered with an error' },
  GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE: { retryable: false, summary: "the upstream's answer exceeds the size limit for one message from an upstream" },
  GH_ERR_CANCELLED: { retryable: false, summary: 'the call was cancelled' },
  GH_ERR_AUDIT_BROKEN: { retryable: false, summary: 'the audit chain does not verify' },
  GH_ERR_AUDIT_TRUNCATED: { retryable: false, summary: 'the audit chain no longer ends at the head recorded apart from it: its newest records were removed; nothing is appended to it' },
  GH_ERR_STATE_UNAVAILABLE: { retryable: true, summary: 'the state store (Redis) is not reachable, so the call is refused' },
  GH_ERR_AUDIT_UNAVAILABLE: { retryable: true, summary: 'the audit trail cannot be written, so calls are refused' },
  GH_ERR_AUDIT_SINK_FAILED: { retryable: true, summary: 'an audit sink (SIEM, OTLP collector) did not accept a batch of records; it is sent again later, nothing is dropped' },
  GH_ERR_BUS_UNAVAILABLE: { retryable: true, summary: 'the bus (NATS) is not reachable, so the call is refused' },
  GH_ERR_NO_WORKER: { retryable: true, summary: "no live worker serves the upstream's pool" },
  GH_ERR_EXECUTION_IN_DOUBT: { retryable: false, summary: 'the worker running a non-idempotent call died mid-call; it may or may not have run, so it is not run again' },
  GH_ERR_WIRE_INVALID: { retryable: false, summary: 'bytes on the bus are not a CAP packet Gatehouse can read or write' },
  GH_ERR_JOB_NOT_FOUND: { retryable: false, summary: 'no such job in the audit trail (of this tenant)' },
  GH_ERR_NOT_IMPLEMENTED: { retryable: false, summary: 'not available in this gateway: the audit query API of a gateway built without a readable audit store, or the pins API of one that keeps no pins' },
  GH_ERR_INTERNAL: { retryable: false, summary: 'internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; data?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.data = options.data;
    this.retryable = ERROR_CATALOGUE[code].retryable;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.data ? { data: this.data } : {}) };
  }
}

/** Wraps anything thrown into a GatewayError, keeping the original as the cause. */
export function asGatewayError(err: unknown, fallback: ErrorCode = 'GH_ERR_INTERNAL'): GatewayError {
  if (err instanceof GatewayError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError(fallback, message, { cause: err });
}

export function isGatewayError(err: unknown, code?: ErrorCode): err is GatewayError {
  return err instanceof GatewayError && (code === undefined || err.code === code);
}
