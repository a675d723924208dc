import { isIP } from 'node:net';
import { z } from 'zod';
import { durationMs } from './duration.ts';
import { sizeBytes } from './size.ts';
import { LOG_LEVELS } from '../log.ts';
import { annotationMatchSchema } from '../kernel/hints.ts';
import { RECORD_ARGUMENTS, type RecordArguments } from '../audit/recorded-input.ts';
import { CheckpointKey } from '../audit/checkpoint.ts';
import { humanMessages, unknownKey } from './problems.ts';

/** How long one upstream request may wait for its answer unless the config says otherwise (ms). */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000;

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected "host:port", for example "127.0.0.1:8787"');

/** An `outbound.allowPrivate` entry: an IP address, a CIDR block (`10.0.0.0/8`, `fd00::/8`) or a host name. */
const outboundAllowEntry = z.string().refine((entry) => {
  const [net, prefix, extra] = entry.split('/');
  const family = isIP(net!.replace(/^\[(.*)\]$/, '$1'));
  if (extra !== undefined) return false;
  if (prefix !== undefined) return family !== 0 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32);
  return family !== 0 || /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(net!);
}, 'expected an IP address, a CIDR block such as "10.0.0.0/8", or a host name');

/**
 * What the operator knows about an upstream's tools, overriding what the upstream claims: annotations are hints
 * from the server, not trust. Keyed by the upstream's own tool name. The kernel decides on these values.
 */
const toolOverrides = z.record(
  z.string().min(1),
  z.strictObject({ annotations: annotationMatchSchema.optional(), riskTags: z.array(z.string().min(1)).optional() }),
);

/** Fields every upstream kind shares: policy facts about it and its tools, and where it runs. */
const upstreamPolicyFacts = {
  /**
   * Distributed mode: the worker pool that hosts this upstream (`gatehouse worker --pool <pool>`); gateways then
   * never start it themselves. Without a pool, every gateway replica runs its own copy.
   */
  pool: z.string().regex(/^[A-Za-z0-9-]{1,32}$/, 'pool names are 1-32 letters, digits or dashes').optional(),
  /** Labels that policy rules can match (`match.labels`) and CEL can read (`labels`). */
  labels: z.record(z.string(), z.string()).optional(),
  tools: toolOverrides.optional(),
  /**
   * What happens when a tool's definition (description, inputSchema, annotations: all of it) differs from the one
   * pinned when it was first seen (`<dataDir>/pins.json`): `quarantine` (the default) hides the tool and refuses
   * its calls with GH_ERR_TOOL_QUARANTINED until `gatehouse tools accept`; `approve` lists the new definition
   * but puts every call to it before a human until it is accepted; `allow` re-pins it. The last two audit
   * `tool.definition_changed` with their `mode`.
   */
  onDefinitionChange: z.enum(['quarantine', 'approve', 'allow']).optional(),
  /**
   * Which MCP revision Gatehouse speaks to it: `auto` (the default) asks `server/discover` first and speaks
   * 2026-07-28 when the server offers it, else the 2025 `initialize` handshake follows on the same connection;
   * `legacy` skips the question and always speaks 2025 (a server that mishandles an unknown first request).
   */
  era: z.enum(['auto', 'legacy']).optional(),
  /**
   * What happens when the poisoning scan (src/call/definition-scan.ts) flags one of the upstream's tool definitions,
   * new or changed: `quarantine` (the default) hides the tool and refuses its calls with GH_ERR_TOOL_QUARANTINED
   * until `gatehouse tools accept`; `log` records the findings on the pin, audits `tool.poisoning_suspected` and
   * serves the tool; `off` scans nothing. Each definition is scanned once per digest.
   */
  definitionScan: z.enum(['quarantine', 'log', 'off']).optional(),
};

const stdioUpstream = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional(),
  /** Per-request timeout (default 60s); restarted by every progress notification. */
  timeout: durationMs.default(DEFAULT_UPSTREAM_TIMEOUT_MS),
  /**
   * Whether clients see this upstream's tools and prompts as `<upstream>__<name>` (true, the default) or under
   * the upstream's own names (false): for a deployment that fronts one server and must keep its names. A name
   * already exposed by another upstream is rejected (left out of the lists, with a warning). Policies, approvals
   * and the audit trail always see `<upstream>__<tool>`, so this setting never changes what a rule matches.
   */
  namespace: z.boolean().optional(),
  ...upstreamPolicyFacts,
});

/**
 * `upstreams.<name>.oauth`: the upstream's tokens from an authorization server. `client-credentials` (the default):
 * Gatehouse's own token on every request. `token-exchange` (RFC 8693): each call carries a token exchanged for the
 * caller's access token (the caller as `sub`, Gatehouse as `act`); a caller without one (an API key) is refused with
 * GH_ERR_CALLER_TOKEN_REQUIRED; Gatehouse's own requests (initialize, lists) carry its client-credentials token.
 */
const upstreamOAuth = z.strictObject({
  grant: z.enum(['client-credentials', 'token-exchange']).default('client-credentials'),
  tokenEndpoint: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  scope: z.string().min(1).optional(),
  /** The `resource` asked for (RFC 8707); default: the upstream's `url`. */
  resource: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /** Token exchange only: the upstream's name at the authorization server, sent as `audience` beside `resource`. */
  audience: z.string().min(1).optional(),
});

export type UpstreamOAuthConfig = z.output<typeof upstreamOAuth>;

const httpUpstream = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  headers: z.record(z.string(), z.string()).default({}),
  /**
   * Gatehouse's own access token for this upstream, by the OAuth client credentials grant, sent as its
   * Authorization header (over any in `headers`); cached until shortly before it expires. Never the client's token.
   */
  oauth: upstreamOAuth.optional(),
  /** Per-request timeout (default 60s); restarted by every progress notification. */
  timeout: durationMs.default(DEFAULT_UPSTREAM_TIMEOUT_MS),
  /** See the stdio upstream's `namespace` (default true). */
  namespace: z.boolean().optional(),
  ...upstreamPolicyFacts,
});

const UPSTREAM_NAME = /^[A-Za-z0-9-]{1,24}$/;

/**
 * An upstream with a `url` is Streamable HTTP, one with a `command` stdio; each then reports its own precise
 * problems, in words: both keys, neither, or a key of the other kind.
 */
export const upstreamSchema = z.unknown().transform((value, ctx): z.output<typeof stdioUpstream> | z.output<typeof httpUpstream> => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: 'expected a mapping: { command, args } for a stdio server, or { url } for a Streamable HTTP server' });
    return z.NEVER;
  }
  const hasUrl = 'url' in value;
  const hasCommand = 'command' in value;
  if (hasUrl && hasCommand) ctx.addIssue({ code: 'custom', message: 'an upstream has either command (stdio) or url (HTTP), not both' });
  if (!hasUrl && !hasCommand) ctx.addIssue({ code: 'custom', message: 'an upstream needs command (a stdio server to start) or url (a Streamable HTTP server)' });
  const [schema, other] = hasUrl ? [httpUpstream, stdioUpstream] : [stdioUpstream, httpUpstream];
  // What `command` beside `url`, or a missing command, does to the rest was said once, above: the other keys are
  // still checked, so every mistake is reported in one pass.
  const { command, ...withoutCommand } = value as Record<string, unknown>;
  const checked = hasUrl ? withoutCommand : { ...withoutCommand, command: hasCommand ? command : 'missing' };
  const result = schema.safeParse(checked, { error: humanMessages });
  if (result.success) return hasUrl === hasCommand ? z.NEVER : result.data;
  const known = Object.keys(schema.shape);
  for (const issue of result.error.issues) {
    if (issue.code !== 'unrecognized_keys') {
      ctx.addIssue({ ...issue } as never);
      continue;
    }
    for (const key of issue.keys) {
      const message = key in other.shape ? `"${key}" belongs to ${hasUrl ? 'a stdio upstream (one with command)' : 'an HTTP upstream (one with url)'}, not to ${hasUrl ? 'an HTTP one' : 'a stdio one'}` : unknownKey(key, known);
      ctx.addIssue({ code: 'custom', path: [...issue.path, key], message });
    }
  }
  return z.NEVER;
});

/** Upstream names prefix their tools: checked beside each upstream's own problems, so both are reported. */
const upstreamsSchema = z.record(z.string(), upstreamSchema).superRefine(
  (upstreams, ctx) => {
    for (const name of Object.keys(upstreams ?? {})) {
      if (!UPSTREAM_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: `upstream names are 1-24 letters, digits or dashes (they prefix the tool names); ${JSON.stringify(name)} is not one` });
    }
  },
  { when: () => true },
);

/**
 * One audit sink (README "Streaming to a SIEM"): where every audit record is forwarded, at least once and in order,
 * behind the append path. `headers` usually carry a `${env:…}` secret; they are sent and never logged.
 */
const auditSink = z.strictObject({
  /** Names the sink in logs, metrics and its cursor: renaming it starts it again from the first record. */
  name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'sink names are 1-32 letters, digits, "_" or "-"'),
  /** `http`: batches of records as JSON. `otlp`: OpenTelemetry logs over OTLP/HTTP, JSON encoding. */
  type: z.enum(['http', 'otlp'], { error: 'expected http (batched JSON) or otlp (OpenTelemetry logs over OTLP/HTTP)' }),
  /** `http`: the URL batches are POSTed to. `otlp`: the collector's base URL (`/v1/logs` is appended unless there). */
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  headers: z.record(z.string(), z.string()).default({}),
  /** Records per request, at most. */
  batchSize: z.number().int().min(1).max(10_000).default(500),
  /** How long one request may take, connecting to reading the answer; past it the batch is retried. */
  timeout: durationMs.default(10_000),
  /** How often a sink that has caught up looks for new records. */
  pollInterval: durationMs.default(1_000),
  /** The wait after a failed batch: `initial`, doubled at each failure up to `max`, with full jitter. */
  retry: z.strictObject({ initial: durationMs.default(500), max: durationMs.default(30_000) }).prefault({}),
});

const auditSinks = z.array(auditSink).superRefine((sinks, ctx) => {
  const seen = new Set<string>();
  sinks.forEach((sink, i) => {
    if (seen.has(sink.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `a sink named ${JSON.stringify(sink.name)} is already defined: each sink needs its own name (it keys the sink's cursor)` });
    seen.add(sink.name);
    if (sink.retry.initial > sink.retry.max) ctx.addIssue({ code: 'custom', path: [i, 'retry', 'initial'], message: `retry.initial (${sink.retry.initial} ms) is longer than retry.max (${sink.retry.max} ms)` });
  });
});

export type AuditSinkConfig = z.output<typeof auditSink>;

const apiKey = z.strictObject({
  key: z.string().min(16, 'API keys must be at least 16 characters'),
  principal: z.string().min(1),
  tenant: z.string().min(1).default('default'),
  /**
   * `approver`: may use the approvals API and web page (as `principal`). `metrics`: may read /metrics. `admin`: both.
   * A key without a role only calls tools.
   */
  roles: z.array(z.enum(['viewer', 'approver', 'metrics', 'admin'])).default([]),
});

/** Asymmetric JWS algorithms only: an HS* key would be a secret shared with every client, and `none` is no signature. */
export const OAUTH_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
const httpsUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

/**
 * `auth.oauth`: Gatehouse as an OAuth 2.1 resource server (the MCP authorization spec). Bearer tokens that are not
 * API keys are checked as JWTs against the issuer's keys, or (opaque ones) by RFC 7662 introspection.
 */
const oauthSchema = z.strictObject({
  /** The authorization server's issuer identifier; tokens must carry it as `iss`. */
  issuer: httpsUrl,
  /** This server's resource URL (RFC 8707), e.g. `https://gatehouse.example.com/mcp`; tokens' `aud` must contain it. */
  audience: httpsUrl,
  /** Default: `jwks_uri` from the issuer's metadata (RFC 8414, then OpenID discovery), fetched on first use. */
  jwksUri: httpsUrl.optional(),
  algorithms: z
    .array(z.string().refine((alg) => (OAUTH_ALGORITHMS as readonly string[]).includes(alg), { error: (issue) => `algorithm ${String(issue.input)} is refused: only asymmetric ones (${OAUTH_ALGORITHMS.join(', ')})` }))
    .min(1)
    .default(['RS256', 'PS256', 'ES256', 'EdDSA']),
  /** The least time between two fetches of the issuer's keys that tokens with an unknown `kid` trigger. */
  jwksCooldown: durationMs.default(30_000),
  /** Scopes every token must hold (403 insufficient_scope otherwise). */
  requiredScopes: z.array(z.string().min(1)).default([]),
  /** Leeway on `exp` and `nbf`, for clocks that disagree. */
  clockTolerance: durationMs.default(30_000),
  claims: z
    .strictObject({
      /** The claim that names the caller (audit principal). */
      principal: z.string().min(1).default('sub'),
      /** The claim that names the caller's tenant; unset: every token is tenant `default`. */
      tenant: z.string().min(1).optional(),
      /** A claim (array or space-separated) whose values `viewer`, `approver`, `metrics`, `admin` are Gatehouse roles. */
      roles: z.string().min(1).optional(),
    })
    .prefault({}),
  /** RFC 7662 introspection for tokens that are not JWTs. */
  introspection: z
    .strictObject({
      endpoint: httpsUrl,
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
    })
    .optional(),
});

export type OAuthConfig = z.output<typeof oauthSchema>;

export const configSchema = z.strictObject({
  /** embedded: one process, state under dataDir. distributed: replicas and workers on NATS (bus) and Redis (state). */
  mode: z.enum(['embedded', 'distributed']).default('embedded'),
  nats: z
    .strictObject({
      url: z.string().regex(/^(nats|tls):\/\/[^\s/]+$/, 'expected a NATS URL such as "nats://127.0.0.1:4222"'),
      /** Keep dispatched jobs in a JetStream stream, so jobs no worker has taken survive a NATS restart. */
      jetstream: z.boolean().default(false),
    })
    .optional(),
  redis: z.strictObject({ url: z.string().regex(/^rediss?:\/\/[^\s]+$/, 'expected a Redis URL such as "redis://127.0.0.1:6379"') }).optional(),
  /** Distributed mode: how workers report in, and how much each takes on at once. */
  workers: z
    .strictObject({
      /** A worker is dead after 3 missed heartbeats. */
      heartbeatInterval: durationMs.default(1_000),
      maxParallelJobs: z.number().int().positive().default(16),
    })
    .prefault({}),
  listen: z
    .strictObject({
      /** Streamable HTTP at /mcp; false turns HTTP off. Binds to loopback unless a host says otherwise. */
      http: z.union([hostPort, z.literal(false)], { error: 'expected "host:port" (for example "127.0.0.1:8787"), or false to serve no HTTP' }).default('127.0.0.1:8787'),
      stdio: z.boolean().default(false),
      /** Extra Host header values accepted besides the bound address and localhost (DNS-rebinding guard). */
      allowedHosts: z.array(z.string()).default([]),
      allowedOrigins: z.array(z.string()).default([]),
      /**
       * A 2025 HTTP session with no request (and no open stream or call in flight) for this long ends, as a DELETE
       * would end it: its memory comes back, and its client gets 404 and starts a new one.
       */
      sessionIdleTimeout: durationMs.pipe(z.number().positive('must be more than 0')).default(30 * 60_000),
    })
    .prefault({}),
  dataDir: z.string().default('.gatehouse'),
  /**
   * The SSRF guard on the HTTP requests Gatehouse makes itself (HTTP upstreams, the approval webhook, audit sinks,
   * the OAuth authorization server): loopback, private, link-local, CGNAT, multicast, unspecified and cloud
   * metadata addresses are refused (GH_ERR_OUTBOUND_DENIED) unless allowed here.
   */
  outbound: z
    .strictObject({
      /** Addresses, CIDR blocks and host names that may be reached although not public; a metadata address only if named exactly. */
      allowPrivate: z.array(outboundAllowEntry).default([]),
      /** Loopback may be reached. Default: true when Gatehouse itself listens on loopback only (listen.http on 127.0.0.0/8, localhost or ::1, or off). */
      allowLoopback: z.boolean().optional(),
    })
    .prefault({}),
  upstreams: upstreamsSchema.default({}),
  policies: z.array(z.string()).default([]),
  /**
   * A draft of `policies` (files or folders, with the same packs added), decided beside the enforced bundle on every
   * tool call and recorded in its `job.decided` (`data.shadow`), never changing an outcome: `gatehouse policy shadow`.
   */
  shadowPolicies: z.array(z.string()).default([]),
  /**
   * Packs whose overlays and tool facts join the bundle (src/packs/): a bundled pack's name, or a path to a pack
   * folder (relative to the config file). `upstream` is the upstream it governs (the pack's own default name
   * otherwise); `params` fill its install parameters. Checked against the pack when the bundle loads.
   */
  packs: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        upstream: z.string().regex(UPSTREAM_NAME, 'upstream names are 1-24 letters, digits or dashes').optional(),
        params: z.record(z.string(), z.unknown()).default({}),
      }),
    )
    .default([]),
  auth: z
    .strictObject({
      apiKeys: z.array(apiKey).default([]),
      oauth: oauthSchema.optional(),
    })
    .optional(),
  approvals: z
    .strictObject({
      /** How long a pending approval lives before it expires (which means deny). */
      ttl: durationMs.default(15 * 60_000),
      /** How long a call may be held open, sending progress, while waiting for a human. */
      holdBudget: durationMs.default(45_000),
      /** Per-client hold budgets by `clientInfo.name` (Claude Desktop drops a call after about 60 s). */
      holdBudgetByClient: z.record(z.string().min(1), durationMs).default({}),
      /**
       * The base URL of the approval pages, as the human's browser reaches it (`/approvals/<id>` is appended).
       * Default: the listen.http address.
       */
      publicUrl: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
      /** Approver groups for a rule's `approval.approvers: ["group:ops"]`: group name → principals. */
      groups: z.record(z.string().min(1), z.array(z.string().min(1))).default({}),
      /** Notified (POST JSON, Slack-compatible `text`) when an approval is created or settled; retried with backoff. */
      webhook: z
        .strictObject({
          url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
          headers: z.record(z.string(), z.string()).default({}),
          /** `plain`: the notice as JSON (`{ text, event, approval }`); `slack`: a Slack message, `{ text, blocks }` with Approve/Deny buttons. */
          format: z.enum(['plain', 'slack']).default('plain'),
          /**
           * Whether an `approval.created` notice carries one-use approve and deny links (when the gateway has a page
           * URL). Anyone who can read the webhook's channel can use them: turn them off, or name approvers on the rules.
           */
          links: z.boolean().default(true),
          /** The principal a link acts as: held to each approval's approvers, selfApprove and quorum, and named in the audit. */
          actAs: z.string().min(1).default('webhook'),
        })
        .optional(),
      /**
       * The HMAC key that signs MRTR `requestState` (at least 32 characters); replicas must share it. Default: a
       * random key created once in the data dir (`secrets/request-state.key`).
       */
      signingKey: z.string().min(32, 'the signing key must be at least 32 characters').optional(),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** The largest request body or stdio line accepted, in bytes. */
      maxMessageBytes: z.number().int().positive().default(4 * 1024 * 1024),
      /**
       * The largest message read from an upstream (a stdio line, an HTTP body, an SSE event), in bytes; unset: 16 ×
       * maxMessageBytes. A tool's result may well be larger than any request.
       */
      maxUpstreamMessageBytes: z.number().int().positive().optional(),
      /**
       * While audit writes fail, past this many unwritten audit events new calls are refused at once (before any
       * waits out `audit.writeTimeout`), which bounds the memory a broken audit store can take.
       */
      maxAuditBacklog: z.number().int().positive().default(1_000),
      /**
       * 2025 HTTP sessions one caller (principal and tenant) may hold on a replica; a new one past it ends the caller's
       * least recently used session, so a client that opens sessions without end cannot take the memory.
       */
      maxSessionsPerCaller: z.number().int().positive().default(1_000),
    })
    .prefault({}),
  sessions: z
    .strictObject({
      /**
       * How long a session's facts (what rules read as `session`, and its budgets and loop-breaker counts) live
       * after its last call; the default is a 2025 HTTP session's idle time, so they expire with the session.
       */
      idle: durationMs.pipe(z.number().positive('must be more than 0')).default(30 * 60_000),
      /**
       * A 2026-07-28 client keeps no session: one that sends no `_meta["gatehouse/session"]` is one session per
       * principal and window of this length (aligned to multiples of it since the epoch).
       */
      window: durationMs.pipe(z.number().positive('must be more than 0')).default(60 * 60_000),
    })
    .prefault({}),
  kernel: z
    .strictObject({
      /** A decision that takes longer than this is thrown away and the call denied (fail closed). */
      decisionBudget: durationMs.default(50),
      /** Reload the policy bundle when a policy file changes (a bad edit is refused; the last good bundle serves). */
      watchPolicies: z.boolean().default(true),
    })
    .prefault({}),
  audit: z
    .strictObject({
      /**
       * How much of a call's arguments its `job.decided` record keeps (see src/audit/recorded-input.ts): `digest`
       * (none), `redacted` (secret-looking keys and the rules' `redact.args` masked; what `policy replay` needs) or
       * `full` (only the rules' `redact.args` masked). The old booleans still load: true is redacted, false digest.
       */
      recordArguments: z
        .union([z.enum(RECORD_ARGUMENTS), z.boolean()], { error: 'expected digest, redacted or full' })
        .transform((mode): RecordArguments => (mode === true ? 'redacted' : mode === false ? 'digest' : mode))
        .default('redacted'),
      /**
       * How long a call waits for its records to be written before it is dispatched: past it, the call is refused with
       * GH_ERR_AUDIT_UNAVAILABLE (and later ones at once, until a write succeeds). At shutdown, how long unwritten
       * records are retried before they are saved under `<dataDir>/audit-unwritten/`.
       */
      writeTimeout: durationMs.default(2_000),
      /**
       * When the chain files are fsynced (embedded mode): `always` before an append resolves, `batch` within
       * BATCH_FSYNC_WINDOW_MS (100 ms) of it, `off` never. Redis's own `appendfsync` decides in distributed mode.
       */
      fsync: z.enum(['always', 'batch', 'off']).default('batch'),
      /**
       * A signed `audit.checkpoint` record follows every record whose seq is a multiple of this, and one ends each
       * chain at a clean shutdown (src/audit/checkpoint.ts). At least 2.
       */
      checkpointEvery: z.number().int().min(2).default(1_000),
      /**
       * The Ed25519 key checkpoints are signed with: a PEM private key, or a 32-byte seed in base64. Without it, a key
       * created once in `<dataDir>/secrets/audit-signing.key`; in distributed mode, no checkpoints are written without it
       * (every replica must sign with the one key a verifier holds).
       */
      signingKey: z
        .string()
        .refine((text) => isCheckpointKey(text), 'expected an Ed25519 private key as PEM, or its 32-byte seed in base64')
        .optional(),
      /** Where every record is also forwarded (SIEMs, OTLP collectors); see README "Streaming to a SIEM". */
      sinks: auditSinks.default([]),
      /**
       * Embedded mode: the chain file is sealed into `<dataDir>/audit/<tenant>.segments/` once it holds this many bytes
       * (a size such as `64MiB`, or bytes; at least 1 KiB), right after the signed checkpoint the writer then appends.
       * Unset: DEFAULT_SEGMENT_BYTES (64 MiB). Refused in distributed mode, whose chains are Redis lists.
       */
      segmentBytes: sizeBytes(1024).optional(),
      /**
       * Removes a chain's oldest records behind a signed checkpoint (the anchor), never records an audit sink has not
       * delivered. Embedded mode: sealed segments, after each seal and at start (never the newest sealed one), the anchor
       * in `<tenant>.anchor`. Distributed mode: the oldest records of the Redis list up to a checkpoint, at start and
       * every `interval`, the anchor in `audit:<tenant>:anchor`. Unset (the default): nothing is ever removed.
       */
      retention: z
        .strictObject({
          /** Records older than this (a duration such as `90d`) are removed, a segment or a checkpoint's worth at a time. */
          maxAge: durationMs.refine((ms) => ms > 0, 'expected a duration above 0').optional(),
          /** The oldest records are removed while a chain holds more than this (a size such as `10GiB`). */
          maxBytes: sizeBytes(1024).optional(),
          /** Distributed mode: how often each replica runs retention (a duration, default 1m). Embedded mode runs it at seals. */
          interval: durationMs.refine((ms) => ms >= 100, 'expected a duration of at least 100ms').optional(),
        })
        .refine((r) => r.maxAge !== undefined || r.maxBytes !== undefined, 'retention needs maxAge, maxBytes or both')
        .optional(),
    })
    .prefault({}),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
  metrics: z
    .strictObject({
      /** Serve `GET /metrics` (Prometheus text) on the HTTP listener and measure calls; false measures nothing. */
      enabled: z.boolean().default(true),
      /** A bearer token that may read /metrics (and nothing else), besides API keys with role `metrics` or `admin`. */
      token: z.string().min(16, 'the metrics token must be at least 16 characters').optional(),
      /** Distinct tool names counted under their own name in `gatehouse_calls_total`; the rest count as `tool="_other"`. */
      maxTools: z.number().int().positive().default(200),
    })
    .prefault({}),
  telemetry: z
    .strictObject({
      /**
       * Sends OpenTelemetry traces over OTLP/HTTP (JSON) when set; unset (the default), no span is recorded and the
       * SDK is never loaded. A client's own traceparent still passes to the upstream unchanged.
       */
      otlp: z
        .strictObject({
          /** The collector's OTLP/HTTP base URL (port 4318 by convention); spans go to `<endpoint>/v1/traces`. */
          endpoint: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL, such as "http://127.0.0.1:4318"' }),
          /** Sent with every export (an API key): never logged. */
          headers: z.record(z.string(), z.string()).default({}),
        })
        .optional(),
    })
    .prefault({}),
});

/** The config file's schema with the checks that span keys: what each mode needs. */
export const gatehouseConfigSchema = configSchema.superRefine((config, ctx) => {
  if (config.mode === 'distributed') {
    if (!config.nats) ctx.addIssue({ code: 'custom', path: ['nats'], message: 'mode: distributed needs nats: { url }' });
    if (!config.redis) ctx.addIssue({ code: 'custom', path: ['redis'], message: 'mode: distributed needs redis: { url }' });
    if (!config.approvals.signingKey) {
      ctx.addIssue({ code: 'custom', path: ['approvals', 'signingKey'], message: 'mode: distributed needs approvals.signingKey, shared by every replica (they sign request states and approver sessions)' });
    }
    // The replicas' own executors serve an upstream without a pool on its name's queue: a pool of that name would share it.
    const replicaRun = new Set(Object.entries(config.upstreams).filter(([, u]) => !u.pool).map(([name]) => name));
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      if (upstream.pool && replicaRun.has(upstream.pool)) {
        ctx.addIssue({ code: 'custom', path: ['upstreams', name, 'pool'], message: `pool "${upstream.pool}" has the name of an upstream the replicas run themselves; name the pool differently` });
      }
    }
    // A Redis list has no files to roll: refused rather than ignored, so nobody counts on segments that never exist.
    if (config.audit.segmentBytes !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['audit', 'segmentBytes'], message: 'audit.segmentBytes applies to embedded mode only: in distributed mode the chains are Redis lists, which are not segmented (audit.retention trims them)' });
    }
    return;
  }
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    if (upstream.pool) ctx.addIssue({ code: 'custom', path: ['upstreams', name, 'pool'], message: 'a pool needs mode: distributed (workers host pools)' });
  }
  if (config.audit.retention?.interval !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['audit', 'retention', 'interval'], message: 'audit.retention.interval applies to distributed mode only: embedded mode runs retention when a segment is sealed' });
  }
});

export type GatehouseConfig = z.output<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type StdioUpstreamConfig = z.output<typeof stdioUpstream>;
export type HttpUpstreamConfig = z.output<typeof httpUpstream>;

/** Whether an upstream's names reach clients with the `<upstream>__` prefix (the default). */
export const isNamespaced = (u: UpstreamConfig): boolean => u.namespace !== false;

export const isStdioUpstream = (u: UpstreamConfig): u is StdioUpstreamConfig => 'command' in u;

function isCheckpointKey(text: string): boolean {
  try {
    CheckpointKey.parse(text);
    return true;
  } catch {
    return false;
  }
}
