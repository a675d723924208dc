/**
 * The ports: the only way the core reaches the outside world. Embedded mode implements them in
 * `adapters/memory/` and `adapters/file/`; distributed mode in `adapters/nats/` and `adapters/redis/`; upstream MCP
 * servers in `adapters/mcp/`. Every port has one contract suite in `test/contract/`, run against each adapter.
 * This file imports only `protocol/` and `errors.ts`, where the records the ports carry live, so that an adapter
 * needs nothing of the core above them (test/unit/layering.test.ts).
 */
import type { BusPacket } from './protocol/cap.ts';
import type { DefinitionFinding } from './protocol/definition-finding.ts';
import type { ApprovalRecord, ApprovalState } from './protocol/approval-record.ts';
import type { AuditRecord, ChainHead } from './protocol/audit-record.ts';
import type { ApprovalNotice } from './protocol/approval-notice.ts';
import type { JobContext } from './protocol/job-context.ts';
import type { SessionRecord } from './protocol/session-record.ts';
import type { Era } from './protocol/call.ts';
import type { ErrorCode } from './errors.ts';
import { ProxyTracer, type Tracer } from '@opentelemetry/api';

export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Handles one packet. On a durable (JetStream) subscription the message is acknowledged when the returned promise
 * resolves and redelivered after a delay when it rejects; a handler that returns nothing acknowledges at once.
 */
export type BusHandler = (packet: BusPacket, subject: string) => unknown;

export interface Subscription {
  unsubscribe(): void;
}

/** Subjects follow NATS rules: tokens split on `.`, `*` matches one token, `>` the rest. */
export interface Bus {
  /**
   * Publishers and subscribers share this process (the in-process bus): no job is lost on the way, so none is sent
   * twice (no receipts, no workers to die) and none redelivered. Over NATS a job may reach executors twice, so each
   * claims it in the store; here a claim would only hold memory for its TTL.
   */
  readonly local?: boolean;
  publish(subject: string, packet: BusPacket): Promise<void>;
  /**
   * With a `queue`, each message goes to one member of the group; without, to every subscriber. Where the adapter
   * keeps a subject durable (NATS JetStream), a queue subscription is a durable consumer named after the queue.
   */
  subscribe(subject: string, handler: BusHandler, options?: { queue?: string }): Subscription;
  /**
   * Request/reply with JSON bodies, beside CAP: how a gateway reaches an upstream that a worker pool hosts for
   * what is not a job (tools/list, resources/read …). Rejects with GH_ERR_UPSTREAM_UNAVAILABLE when nobody
   * answers on `subject`, GH_ERR_UPSTREAM_TIMEOUT after `timeoutMs`, GH_ERR_CANCELLED when `signal` aborts, and
   * with the responder's own coded error (code, message, data) when its handler throws.
   */
  request(subject: string, body: unknown, options: { timeoutMs: number; signal?: AbortSignal }): Promise<unknown>;
  /** Answers requests on `subject`; with a `queue`, one member of the group answers each. */
  reply(subject: string, handler: BusResponder, options?: { queue?: string }): Subscription;
  close(): Promise<void>;
}

export type BusResponder = (body: unknown, subject: string) => Promise<unknown>;

/** Key-value state with TTLs: payload pointers (`ctx:`/`res:`), job state, idempotency claims. */
export interface Store {
  get<T = unknown>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, options?: { ttlMs?: number }): Promise<void>;
  /** Atomic claim: true if the key was absent and is now set. */
  setIfAbsent(key: string, value: unknown, options?: { ttlMs?: number }): Promise<boolean>;
  /**
   * `setIfAbsent(claim, value)` and `get(key)` in one operation (Redis: one script): how an executor claims a job
   * and reads its context with one command.
   */
  claimAndGet<T = unknown>(claim: string, value: unknown, key: string, options?: { ttlMs?: number }): Promise<{ claimed: boolean; value: T | undefined }>;
  /**
   * Atomic counter (rate limits, quotas): adds 1 and resolves to the new count. A key that is absent or expired
   * starts at 1 and gets `ttlMs`; later increments keep the expiry set by the first (Redis: INCR + PEXPIRE NX).
   */
  increment(key: string, options?: { ttlMs?: number }): Promise<number>;
  delete(key: string): Promise<void>;
  /**
   * Reads a key and deletes it, and the `alsoDelete` keys with it, in one operation (Redis: one script): how a call
   * collects its result and drops both of its payload pointers.
   */
  take<T = unknown>(key: string, alsoDelete?: readonly string[]): Promise<T | undefined>;
  close(): Promise<void>;
}

export interface ApprovalQuery {
  state?: ApprovalState;
  tenant?: string;
  /** The approvals of one call (`bindingKeyOf`): answered from an index, never by reading every approval. */
  bindingKey?: string;
}

/**
 * Durable approvals, shared by every process that reads the same data dir, or every replica on the same Redis.
 * The guarantees, which the contract suite checks for each adapter:
 * - Records written by an older version load: adapters pass what they read through `upgradeApprovalRecord`.
 * - `list({ bindingKey })` costs the approvals of that call, not all of them (file: a marker folder per binding;
 *   Redis: a set per binding key, added in the same MULTI as the record).
 * - `update` is an atomic compare-and-set: concurrent updates from any number of processes are applied one after
 *   the other and none is lost (file: a lock file per approval; Redis: WATCH/MULTI or a Lua CAS, retried).
 * - `watch` sees changes made anywhere (file: fs.watch plus a poll; Redis: pub/sub on each write).
 */
export interface ApprovalStore {
  /** Fails with GH_ERR_INTERNAL if the id exists. */
  create(record: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** Oldest first (createdAt, then id). */
  list(query?: ApprovalQuery): Promise<ApprovalRecord[]>;
  /**
   * Atomic compare-and-update across processes: `update` sees the current record and returns the next one, or
   * throws to refuse. It must be pure, since an optimistic adapter runs it again on a conflict. Returning
   * `current` itself changes nothing. Resolves to the stored result; GH_ERR_APPROVAL_NOT_FOUND for an unknown id.
   */
  update(id: string, update: (current: ApprovalRecord) => ApprovalRecord): Promise<ApprovalRecord>;
  /** Calls `listener` when any approval changes, in this or another process. Returns an unsubscribe. */
  watch(listener: (record: ApprovalRecord) => void): () => void;
  close(): Promise<void>;
}

/**
 * Tells people about approvals: one to decide, or one decided. Fire and forget: `notify` returns at once and never
 * throws; delivery, retries and their failures are the adapter's (logged, never blocking or losing an approval).
 */
export interface Notifier {
  notify(notice: ApprovalNotice): void;
  /** Stops delivering; what is still queued is dropped. */
  close(): Promise<void>;
}

/**
 * Append-only storage of audit chains, one per tenant. `append` is a compare-and-swap on the chain head, so
 * several writers (processes, replicas) never fork a chain: on a conflict the caller re-chains and retries.
 */
/**
 * When a file chain is fsynced: `always` before an append resolves, `batch` (group commit) within a window after
 * it, `off` never (the OS writes it when it likes).
 */
export type AuditFsync = 'always' | 'batch' | 'off';

/** Bytes after the last whole record of a chain: a write cut short by a crash or a full disk, not yet repaired. */
export interface TornTail {
  bytes: number;
  /** sha256 of those bytes. */
  digest: string;
}

export interface AuditStore {
  /**
   * The newest record's seq and hash, as the store last saw it (a stale head only makes the next append report the
   * current one). Rejects with GH_ERR_AUDIT_TRUNCATED when the store finds the chain cut (see `append`).
   */
  head(tenant: string): Promise<ChainHead>;
  /**
   * Appends when `expected` is still the head (compare-and-swap), else reports the current head. Refuses with
   * GH_ERR_AUDIT_TRUNCATED, appending nothing, when the chain no longer ends where the store left it or does not
   * reach its recorded head (its newest records were removed). A store that repairs a torn tail first (recording
   * `audit.repaired`) reports the head after the repair, so the caller chains its records again. Resolves once the
   * records are as durable as the store promises (handed to the OS, fsynced, or in Redis).
   */
  append(tenant: string, expected: ChainHead, records: AuditRecord[]): Promise<{ ok: true } | { ok: false; head: ChainHead }>;
  /** Oldest first; only whole records (a torn tail is not one). */
  read(tenant: string, options?: { fromSeq?: number }): AsyncIterable<AuditRecord>;
  /** Newest first, for scans of a chain's tail that stop early. */
  readBack(tenant: string): AsyncIterable<AuditRecord>;
  /** The head kept apart from the chain by the last append that reached it, or undefined when none was recorded. */
  recordedHead(tenant: string): Promise<ChainHead | undefined>;
  /** What follows the last whole record, when a write was cut short and not yet repaired. */
  tornTail(tenant: string): Promise<TornTail | undefined>;
  tenants(): Promise<string[]>;
  close(): Promise<void>;
  /**
   * Whether the chain's active segment is full: the writer then ends its next batch with a signed checkpoint, after
   * which the store seals the segment (every sealed segment ends in one). Absent: the store never seals.
   */
  segmentFull?(tenant: string): boolean;
  /**
   * The record retention anchored the chain on (a signed checkpoint, the newest removed record): the chain's kept
   * records start right after it. Undefined when nothing was removed.
   */
  anchor?(tenant: string): Promise<AuditRecord | undefined>;
}

/** Where one call starts in a chain: its `job.submitted` record. */
export interface IndexedCall {
  seq: number;
  jobId: string;
}

/**
 * Lookups a store keeps beside its chains so a query need not scan them. A cache, never the truth: brought up to
 * date with the chain before it answers, every record it returns checked against what was asked, and `undefined`
 * when it cannot answer (the caller scans the chain instead).
 */
export interface AuditIndex {
  /** The `job.submitted` records whose `data.session` is `session`, oldest first. */
  sessionCalls(tenant: string, session: string): Promise<IndexedCall[] | undefined>;
  /** Each job's records, oldest first, in the order of `jobIds`; [] for a job the chain has none of. */
  jobRecords(tenant: string, jobIds: readonly string[]): Promise<AuditRecord[][] | undefined>;
}

/**
 * Delivers audit records to one audit sink (a SIEM's HTTP endpoint, an OTLP logs endpoint). The forwarder
 * (src/audit/sinks/) hands it batches in chain order and retries a batch that fails until it is accepted.
 */
export interface AuditSinkSender {
  readonly name: string;
  /**
   * Resolves once the receiver accepted every record of the batch. Rejects with GH_ERR_AUDIT_SINK_FAILED, whose
   * message names the receiver by its origin only (never its path, query or headers, which may carry secrets).
   */
  send(records: readonly AuditRecord[], signal: AbortSignal): Promise<void>;
}

/**
 * How far each audit sink has delivered each tenant's chain: the seq of the last record it handed over, 0 for none.
 * Survives restarts (file: the data dir; Redis: beside the chains). `set` never moves a cursor back.
 */
export interface SinkCursors {
  get(sink: string, tenant: string): Promise<number>;
  set(sink: string, tenant: string, seq: number): Promise<void>;
  close(): Promise<void>;
}

/** How far one sink is behind one tenant's chain, as this process last saw it (for /metrics). */
export interface SinkLag {
  sink: string;
  tenant: string;
  /** Records stored and not yet delivered. */
  records: number;
  /** Age of the oldest of them (seconds), 0 when none is waiting. */
  oldestSeconds: number;
}

export interface ProgressUpdate {
  progress: number;
  total?: number;
  message?: string;
}

/** A server→client request (elicitation, sampling, roots) coming from an upstream; answered by a client. */
export type ServerRequestHandler = (method: string, params: Record<string, unknown> | undefined, signal: AbortSignal) => Promise<Record<string, unknown>>;

/** An Authorization header value Gatehouse obtains (OAuth client credentials, or token exchange for a caller), cached by its maker. */
export interface UpstreamCredential {
  authorization(): Promise<string>;
  /** The upstream answered 401 with it: the next request gets a new one. */
  rejected(): void;
}

/**
 * Upstream tokens obtained on a caller's behalf (RFC 8693 token exchange, `upstreams.<name>.oauth.grant:
 * token-exchange`): the caller's validated access token is exchanged where the call is decided, and nothing but the
 * exchanged token, scoped to that upstream, reaches whoever runs the call.
 */
export interface CallerTokenExchange {
  /** Whether calls to `server` run only on a caller's behalf, with a token exchanged for the caller's. */
  needs(server: string): boolean;
  /** The credential of one call to `server` for the holder of `subjectToken` (exchanged when first asked, cached by digest). */
  credential(server: string, subjectToken: string): UpstreamCredential;
}

export interface UpstreamRequestOptions {
  /**
   * This request's Authorization on a caller's behalf (token exchange), in place of the upstream's own; dropped on
   * the upstream's 401. Over stdio there is no header, and nothing uses it.
   */
  credential?: UpstreamCredential;
  /** Aborting sends `notifications/cancelled` upstream and rejects with GH_ERR_CANCELLED. */
  signal?: AbortSignal;
  /** Rejects with GH_ERR_UPSTREAM_TIMEOUT; the clock restarts on every progress notification. */
  timeoutMs?: number;
  /** When set, a progress token is sent and the upstream's progress notifications arrive here. */
  onProgress?: (update: ProgressUpdate) => void;
  /** Handles server→client requests the upstream makes while serving this request. */
  onServerRequest?: ServerRequestHandler;
  /** Notifications the upstream sends about this request (logging, for instance). */
  onNotification?: (method: string, params: Record<string, unknown> | undefined) => void;
  /**
   * What the caller declared it can answer (its 2026-07-28 envelope, or its 2025 initialize): a 2026-07-28 upstream
   * hears these in place of Gatehouse's own, so it asks only for what the caller can give, or answers -32021.
   */
  clientCapabilities?: Record<string, unknown>;
}

export type UpstreamState = 'starting' | 'ready' | 'down' | 'closed';

/** Why an upstream is not ready: its last failure, and for a process that died, the end of its stderr. */
export interface UpstreamFailure {
  message: string;
  /** The code, when the failure is coded by Gatehouse itself (GH_ERR_OUTBOUND_DENIED: the SSRF guard refused the address). */
  code?: ErrorCode;
  /** The last lines the server wrote on stderr before it died, oldest first. */
  stderr?: string[];
}

export interface UpstreamListener {
  state?(state: UpstreamState, error?: Error): void;
  /** Notifications not tied to a request: list_changed, resources/updated, logging … */
  notification?(method: string, params: Record<string, unknown> | undefined): void;
  /** Server→client requests that no in-flight request claimed. */
  serverRequest?: ServerRequestHandler;
}

/** An upstream's `serverInfo`, as its initialize answer gave it (only the name and version are kept). */
export interface ServerInfo {
  name: string;
  version?: string;
}

/** One upstream MCP server (a stdio process or a Streamable HTTP endpoint), spoken to as a client. */
export interface Upstream {
  readonly name: string;
  /** The endpoint of a Streamable HTTP upstream: egress rules that apply to a call apply to it too. */
  readonly url?: string;
  /** Set when a worker pool hosts the upstream: its jobs go to that pool, never to this process's executor. */
  readonly pool?: string;
  /** Its calls run only on a caller's behalf (token exchange): each needs the call's own `credential`. */
  readonly actsForCaller?: boolean;
  readonly state: UpstreamState;
  /** Why it is down (or could not start), once it failed; cleared when it is ready again. */
  readonly failure?: UpstreamFailure;
  /** The initialize result of the current connection, once ready. */
  readonly serverCapabilities: Record<string, unknown> | undefined;
  /** Who the server says it is in that initialize result (`serverInfo`), once ready: what packs may match on. */
  readonly serverInfo?: ServerInfo;
  /**
   * The revision spoken to it, once ready: `modern` (2026-07-28, stateless, the envelope on every request) when it
   * offered that revision to `server/discover`, else `legacy` (the 2025 initialize handshake).
   */
  readonly era?: Era;
  /** Starts connecting and keeps retrying with backoff; resolves after the first attempt settles. */
  start(listener: UpstreamListener): Promise<void>;
  request(method: string, params: Record<string, unknown> | undefined, options?: UpstreamRequestOptions): Promise<Record<string, unknown>>;
  notify(method: string, params?: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/** A job dispatched and not yet ended, as the ledger keeps it: its facts, never its arguments. */
export interface OpenJob {
  jobId: string;
  tenant: string;
  principal: string;
  server: string;
  /** The upstream's own tool name (not namespaced). */
  tool: string;
  pool: string;
  /** The gateway replica that dispatched the job and waits for its result. */
  replica: string;
  /**
   * When the job counts as orphaned (ms since the epoch): past the run timeout of the replica that waits for it,
   * plus a grace, so a live replica always ends its own jobs first.
   */
  deadline: number;
}

/** `gatehouse dlq retry`: asked for by someone, then taken by one gateway that runs the call again. */
export interface RetryRequest {
  requestedAt: number;
  requestedBy: string;
  /** The gateway replica running the retry, once one took it. */
  takenBy?: string;
  takenAt?: number;
}

/** A job that ended on an infrastructure failure, kept so that an operator can look at it, retry it or drop it. */
export interface DeadLetter extends Omit<OpenJob, 'deadline'> {
  /** Why it died: GH_ERR_NO_WORKER, GH_ERR_EXECUTION_IN_DOUBT, GH_ERR_UPSTREAM_UNAVAILABLE, GH_ERR_UPSTREAM_TIMEOUT … */
  code: ErrorCode;
  message: string;
  /** When it was dead-lettered (ms since the epoch). */
  at: number;
  /**
   * The job's stored context (`ctx:<job_id>`), which a retry runs again; absent when it had expired. It holds the
   * call's arguments: never log it.
   */
  context?: JobContext;
  retry?: RetryRequest;
}

/**
 * How long a DLQ retry stays taken before `takeRetry` offers it again (ms): its taker is then held to be gone (it
 * died, or stopped before it could finish the entry). Far longer than a retried call runs: one still running on a
 * live replica after this long may run twice.
 */
export const RETRY_TAKEN_TTL_MS = 15 * 60_000;

/**
 * The jobs in flight with their deadlines, the dead-letter queue (DLQ) and leader locks: what lets one replica
 * (the leader) end the jobs of a replica that died, and run the retries an operator asks for. Shared by every
 * replica on the same Redis; in embedded mode jobs and locks live in the process and the DLQ in the data dir, so
 * `gatehouse dlq` works from another process. The guarantees, which the contract suite checks for each adapter:
 * - `open` is an upsert: opening a job again moves its deadline (a re-dispatch, progress). The hot path does not
 *   await `open` and `finish`: each is one round trip (Redis: one EVALSHA).
 * - `overdue(now, limit)` returns open jobs whose deadline is at or before `now`, earliest first; never a finished one.
 * - DLQ entries are keyed by job id: dead-lettering a job again replaces its entry and keeps a retry request.
 * - `requestRetry` and `takeRetry` are atomic across processes: each request is taken by exactly one taker.
 * - `acquireLock` takes a free or expired lock, or renews one `holder` holds; two holders never hold one lock at
 *   once. A lock expires `ttlMs` after it was last acquired or renewed (Redis: on the server's clock).
 */
export interface JobLedger {
  open(job: OpenJob): Promise<void>;
  /** Forgets an open job (it ended); nothing happens for an unknown one. */
  finish(jobId: string): Promise<void>;
  overdue(now: number, limit: number): Promise<OpenJob[]>;
  deadLetter(entry: DeadLetter): Promise<void>;
  /** Oldest first (`at`, then job id). */
  listDead(): Promise<DeadLetter[]>;
  getDead(jobId: string): Promise<DeadLetter | undefined>;
  /** Resolves to false when there was no such entry. */
  removeDead(jobId: string): Promise<boolean>;
  /**
   * Marks a dead job for retry; a request already there (taken or not) is kept as it is. Resolves to the entry as
   * it now stands, or undefined when there is no such entry.
   */
  requestRetry(jobId: string, by: string, at: number): Promise<DeadLetter | undefined>;
  /**
   * Takes the oldest retry request nobody took yet, or one taken `RETRY_TAKEN_TTL_MS` ago or more (its taker
   * presumably died), and marks it taken by `holder` at `at`. The entry stays in the DLQ (shown as retrying) until the
   * taker removes it once the retry has ended, so a taker that dies leaves it visible, and taken back later.
   */
  takeRetry(holder: string, at: number): Promise<DeadLetter | undefined>;
  /** True when `holder` now holds the lock `name` for `ttlMs`: it was free, expired, or already held by `holder`. */
  acquireLock(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Frees the lock if `holder` still holds it. */
  releaseLock(name: string, holder: string): Promise<void>;
  close(): Promise<void>;
}

/** How a governed call ended, as the metrics count it (see README "Watching your agents"). */
export type CallOutcomeKind = 'ok' | 'tool_error' | 'refused' | 'failed' | 'pending' | 'rpc_error';

/** One governed call, observed once when it ends. Seconds throughout. */
export interface CallObservation {
  /** The kernel's effect (`allow`, `deny`, `require_approval`), or `none` when the call ended before a decision. */
  decision: string;
  upstream: string;
  tool: string;
  outcome: CallOutcomeKind;
  /** From the call reaching the pipeline to its answer. */
  seconds: number;
  /** Of which: dispatch to result (the upstream, and in distributed mode the bus and the worker). */
  upstreamSeconds: number;
  /** Of which: held in the approval gate. */
  approvalSeconds: number;
}

/**
 * Where the core reports what it measures. Each method is called where the thing happens, synchronously, and must
 * be cheap; gauges (pending approvals, audit backlog, upstream state, links) are read by the adapter at scrape
 * time instead. `enabled` false (the `noMetrics` default) lets a caller skip even reading the clock.
 */
export interface Metrics {
  readonly enabled: boolean;
  callEnded(call: CallObservation): void;
  /** How long the kernel took to decide. */
  decided(seconds: number): void;
  /** How long an approval waited from creation to its grant. */
  approvalWaited(seconds: number): void;
  /** One MCP request answered by a front (`mcp.server.operation.duration`); `errorType` for a JSON-RPC error. */
  operation(method: string, seconds: number, errorType?: string): void;
  /** An upstream came back (ready again after down). */
  upstreamRestarted(upstream: string): void;
}

export const noMetrics: Metrics = {
  enabled: false,
  callEnded: () => undefined,
  decided: () => undefined,
  approvalWaited: () => undefined,
  operation: () => undefined,
  upstreamRestarted: () => undefined,
};

/**
 * Where spans go. OpenTelemetry's own API is the port here (`Tracer`, with its spans and contexts): it is already an
 * interface with a no-op behind it, which an SDK replaces. `adapters/otel/` is that SDK, loaded only when
 * `telemetry.otlp` is configured; `noTracing` is the no-op, which keeps a client's own trace context and adds none.
 */
export interface Tracing {
  readonly tracer: Tracer;
  /** Whether spans are recorded and exported. */
  readonly enabled: boolean;
  /** Resolves once spans can be recorded (the SDK is loaded); they are dropped until then. */
  ready(): Promise<void>;
  /** Exports what is buffered, then stops; spans ended later are dropped. */
  close(): Promise<void>;
}

const NO_TRACER: Tracer = new ProxyTracer({ getDelegateTracer: () => undefined }, 'gatehouse');

export const noTracing: Tracing = { tracer: NO_TRACER, enabled: false, ready: async () => undefined, close: async () => undefined };

/**
 * Checks an OAuth access token presented to Gatehouse (adapters/oauth/). Resolves to the token's claims once it is
 * proven (a JWT's signature, issuer, audience, expiry and algorithm; an opaque token's introspection); rejects with
 * GH_ERR_UNAUTHORIZED when it is not, and GH_ERR_UPSTREAM_UNAVAILABLE when the authorization server cannot be
 * reached (the token is then refused too: it fails closed).
 */
export interface TokenVerifier {
  verify(token: string): Promise<Record<string, unknown>>;
}

/** One tool's pinned definition (`gatehouse tools pins`), kept per upstream by a `PinStore`. */
export interface ToolPin {
  server: string;
  /** The upstream's own tool name. */
  tool: string;
  /** sha256 of the pinned definition (JCS), as `CatalogEntry.digest`. */
  digest: string;
  /** The pinned definition itself, so that a change can be shown as a diff. */
  definition: Record<string, unknown>;
  pinnedAt: number;
  /** Who pinned it: `first-seen` by the gateway, or an operator's `tools accept`. */
  pinnedBy: string;
  /** A definition the upstream gave since that is not the pinned one: while set, the tool is quarantined. */
  changed?: { digest: string; definition: Record<string, unknown>; seenAt: number; rejected?: { by: string; at: number }; scan?: PinScan };
  /**
   * What the poisoning scan found in the pinned definition (set only when it found something): with
   * `definitionScan: quarantine` the tool is quarantined until an operator accepts it.
   */
  scan?: PinScan;
}

/** A poisoning scan's findings on a pinned (or changed) definition, and the operator's decision on them. */
export interface PinScan {
  findings: DefinitionFinding[];
  accepted?: { by: string; at: number };
  rejected?: { by: string; at: number };
}

/**
 * Where pinned tool definitions are kept: `<dataDir>/pins.json` in embedded mode (adapters/file/pin-store.ts), a
 * Redis hash in distributed mode (adapters/redis/pin-store.ts). Gateways and the CLI share it, so every read sees
 * what another process wrote last.
 */
export interface PinStore {
  list(): Promise<ToolPin[]>;
  get(server: string, tool: string): Promise<ToolPin | undefined>;
  /** Writes these pins, each replacing the one of its tool, in one atomic write. */
  put(pins: readonly ToolPin[]): Promise<void>;
  close(): Promise<void>;
}

/** One record `SessionFacts.update` changes, and how long it lives after this write (a sliding expiry). */
export interface SessionSlot {
  key: string;
  ttlMs: number;
}

/** What an update makes of the records it saw: the next ones (undefined: leave it as it is), and its answer. */
export interface SessionChange<T> {
  next: readonly (SessionRecord | undefined)[];
  value: T;
}

/**
 * The session facts rules read as `session`, and the counts of budgets and the loop breaker, by session key
 * (src/session/session-key.ts): the memory of the data dir's `sessions.json` in embedded mode
 * (adapters/file/session-facts.ts), Redis in distributed mode, so every replica sees the same session. The
 * guarantees, which the contract suite checks for each adapter:
 * - `update` is atomic across processes: concurrent updates of the same records are applied one after the other
 *   and none is lost (memory: no await between read and write; Redis: a compare-and-set script, retried).
 * - A record expires `ttlMs` after the last update that wrote it; a record never written reads as undefined.
 */
export interface SessionFacts {
  /** The records of `keys`, in order; undefined for one absent or expired. */
  read(keys: readonly string[]): Promise<(SessionRecord | undefined)[]>;
  /**
   * Reads the records of `slots` and writes what `change` makes of them, atomically. `change` must be pure: an
   * optimistic adapter runs it again on a conflict. Resolves to its `value`; rejects with GH_ERR_STATE_UNAVAILABLE
   * when the store cannot be reached (the caller then fails closed).
   */
  update<T>(slots: readonly SessionSlot[], change: (current: readonly (SessionRecord | undefined)[]) => SessionChange<T>): Promise<T>;
  close(): Promise<void>;
}
