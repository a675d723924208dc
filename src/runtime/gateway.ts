import type { AuditIndex, AuditStore, Bus, Clock, PinStore, SessionFacts, Store, ApprovalStore, SinkLag, Subscription, CallerTokenExchange, TokenVerifier, Tracing, Upstream } from '../ports.ts';
import { OAuthResource } from '../api/oauth-resource.ts';
import { remoteJobClient, serveJobClients } from '../scheduler/job-client-relay.ts';
import type { AuditWriter } from '../audit/chain-writer.ts';
import type { AuditEvent } from '../protocol/audit-record.ts';
import type { Logger } from '../log.ts';
import { isNamespaced, type GatehouseConfig } from '../config/schema.ts';
import type { JsonRpcNotification } from '../protocol/jsonrpc.ts';
import { AuditTrail } from '../audit/trail.ts';
import { RunMarkers } from '../audit/run-markers.ts';
import { AuditQuery } from '../audit/query.ts';
import { AuditTail, type AppendFeed } from '../audit/tail.ts';
import { AuditSinks, type AuditSinkPorts } from '../audit/sinks.ts';
import { Kernel } from '../kernel/kernel.ts';
import { ShadowPolicies } from '../kernel/shadow.ts';
import type { DecisionInput } from '../kernel/decision.ts';
import { toolFactsFromConfig } from '../kernel/tool-facts.ts';
import type { PolicyBundle } from '../kernel/bundle.ts';
import { deploymentPolicyFiles, loadDeploymentPolicy, loadShadowPolicy } from '../packs/deployment.ts';
import type { PackInstall } from '../packs/install.ts';
import type { InitialisedServer } from '../packs/match.ts';
import { PolicyReloader, type ReloadOutcome } from '../kernel/policy-reloader.ts';
import { ApprovalService } from '../approvals/service.ts';
import { Scheduler, type SchedulerOptions } from '../scheduler/scheduler.ts';
import { Executor } from '../scheduler/executor.ts';
import { JobTracker } from '../scheduler/job-tracker.ts';
import { ulid } from '../protocol/ulid.ts';
import { CallPipeline } from '../call/pipeline.ts';
import { ToolCatalog, type ToolFacts } from '../call/catalog.ts';
import { PoisoningCheck } from '../call/poisoning-check.ts';
import { ToolPins } from '../call/tool-pins.ts';
import { PinDesk, type PinDecisions } from '../call/pin-desk.ts';
import { SessionTracker } from '../session/session-tracker.ts';
import { recordCatalog } from '../kernel/authoring/recorded-catalog.ts';
import { Dispatcher } from '../gateway/dispatcher.ts';
import type { ExchangeServices } from '../gateway/exchange.ts';
import type { HttpFrontServices } from '../gateway/http-front.ts';
import { GovernedRequests } from '../gateway/governed-requests.ts';
import { UpstreamDirectory } from '../call/upstream-directory.ts';
import { ResourceSubscriptions } from '../gateway/resource-subscriptions.ts';
import type { ClientSession } from '../gateway/session.ts';
import { BuiltinTools } from '../approvals/channels/builtin-tools.ts';
import { CallTasks } from '../approvals/channels/tasks.ts';
import { TaskRelay } from '../approvals/channels/task-relay.ts';
import { purposeKey } from '../approvals/signing.ts';
import { UpstreamTasks } from '../gateway/upstream-tasks.ts';
import { ExecuteOnApproval } from '../approvals/channels/on-approve.ts';
import { RequestStateCodec, requestStateKey } from '../approvals/channels/request-state.ts';
import type { ApprovalLinks } from '../approvals/channels/pending.ts';
import { ApprovalNotifications } from '../approvals/notifications.ts';
import { ActionLinks } from '../approvals/action-links.ts';
import { ActionTokens, actionTokenKey } from '../approvals/action-tokens.ts';
import type { Notifier } from '../ports.ts';
import type { JobLedger } from '../ports.ts';
import { Reconciler } from '../scheduler/reconciler.ts';
import type { GatewayMetrics } from './metrics.ts';
import { openTracing } from './tracing.ts';
import { consoleSources } from './console-sources.ts';
import type { ConsoleSources } from '../api/console/sources.ts';

export interface LinksHealth {
  /** False when the replica cannot serve calls: a link it needs is down. */
  ok: boolean;
  [part: string]: unknown;
}

export interface GatewayPorts {
  bus: Bus;
  store: Store;
  approvalStore: ApprovalStore;
  /** Where the audit trail's batches go. */
  auditWriter: AuditWriter;
  /**
   * Embedded mode: the chains the trail writes, read back at start for the jobs a run that did not stop cleanly
   * sent to run and never ended (distributed mode: the reconciler ends those of a lost replica through the ledger).
   */
  auditChains?: AuditStore;
  /**
   * Where `/api/audit` and `/api/jobs/:id` read calls back, newest first (through the index where the store keeps
   * one), and the console's live feed reads the chain forward (distributed mode: the Redis list; embedded:
   * `auditChains`).
   */
  auditReader?: Pick<AuditStore, 'readBack' | 'read' | 'head'> & Partial<AuditIndex>;
  /** Embedded mode: the chain writer's appends, which the console's live feed hears rather than reading the chain. */
  auditAppends?: AppendFeed;
  /** Where audit events still unwritten at shutdown are kept (`<dataDir>/audit-unwritten/`); without it, only the log has them. */
  auditSpill?: (events: readonly AuditEvent[]) => Promise<string>;
  clock: Clock;
  upstreams: Map<string, Upstream>;
  /** Told of every approval created or settled (the webhook), when one is configured. */
  notifier?: Notifier;
  /** Distributed mode: the live workers of each pool, and whether jobs may queue durably for one. */
  scheduling?: SchedulerOptions;
  /** The jobs in flight and the DLQ: with one, the scheduler dead-letters and the leader's reconciler runs here. */
  ledger?: JobLedger;
  /** Distributed mode: the state of the links this replica needs (NATS, Redis) and of the pools, for `/healthz`. */
  links?: () => LinksHealth;
  /**
   * Keeps the catalog's tool facts (JSON, see kernel/authoring/recorded-catalog.ts) where the CLI reads them when no
   * gateway answers: `<dataDir>/catalog.json`. Called at start and whenever the catalog changes.
   */
  recordCatalog?: (json: string) => void;
  /** Where tool definitions are pinned (`<dataDir>/pins.json`, or Redis); both runtimes have it, unit tests may not. */
  pins?: PinStore;
  /** Where session facts, loop breakers and budgets are kept (`<dataDir>/sessions.json`, or Redis); without it, rules see an empty session. */
  sessionFacts?: SessionFacts;
  /** Where calls, decisions, approvals, audit appends and upstream restarts are measured; served at /metrics. */
  metrics?: GatewayMetrics;
  /** The `audit.sinks` the trail is forwarded to (SIEMs, OTLP collectors), when any is configured. */
  auditSinks?: AuditSinkPorts;
  /** Where spans go; by default as the config's `telemetry.otlp` says (none when unset). */
  tracing?: Tracing;
  /** Checks the access tokens of `auth.oauth` (adapters/oauth/), when it is configured. */
  tokenVerifier?: TokenVerifier;
  /** Exchanges callers' access tokens for the upstreams with `oauth.grant: token-exchange`, when there are any. */
  tokenExchange?: CallerTokenExchange;
}

/** Without a job ledger to hold leases in, this process is the only forwarder of its sinks. */
const SOLE_FORWARDER = { acquireLock: async () => true, releaseLock: async () => undefined };

const APPROVAL_SWEEP_MS = 30_000;
const HOLD_PROGRESS_EVERY_MS = 10_000;

/** How the process that runs the gateway wants it to speak to its user. */
export interface GatewayOptions {
  /**
   * The command line that approves approval `id`, as the user runs the CLI from where they are (`start` and `wrap`
   * pass it: `./bin/gatehouse.js approvals approve <id>` in a clone). Default: `gatehouse approvals approve <id>
   * --data-dir <dataDir>`.
   */
  approveCommand?(id: string): string;
}

/**
 * The gateway core, assembled from ports: catalog, kernel, approvals, scheduler, executor and the dispatcher
 * the fronts talk to. It knows no transport and no concrete adapter. The fronts never see it: each gets the
 * services it uses (`stdioServices()`, `httpServices()`).
 */
export class Gateway {
  readonly kernel: Kernel;
  readonly audit: AuditTrail;
  readonly approvals: ApprovalService;
  /** The one place approval page URLs come from: links in results, the webhook, the approvals API. */
  readonly approvalLinks: ApprovalLinks;
  readonly catalog: ToolCatalog;
  readonly dispatcher: Dispatcher;
  readonly directory: UpstreamDirectory;
  readonly subscriptions = new ResourceSubscriptions();
  /** Times each upstream came back after being down, since start (the console's Upstreams page). */
  readonly restarts = new Map<string, number>();
  private readonly scheduler: Scheduler;
  private readonly executor: Executor;
  private readonly sessions = new Set<ClientSession>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly policies: PolicyReloader;
  /** Keeps the `shadowPolicies` draft, when the config has one. */
  private readonly shadowPolicies: PolicyReloader | undefined;
  /** Packs applied after start (wrap, once its upstream said who it is), beside the config's. */
  private readonly addedPacks: PackInstall[] = [];
  private readonly notifications: ApprovalNotifications | undefined;
  /** The webhook notices' one-use approve and deny links (`approvals.webhook.links`). */
  private readonly actionLinks: ActionLinks | undefined;
  private readonly onApproval: ExecuteOnApproval;
  private readonly pipeline: CallPipeline;
  private readonly reconciler: Reconciler | undefined;
  private readonly runMarkers: RunMarkers | undefined;
  private readonly sinks: AuditSinks | undefined;
  /** This replica's id: the sender of the jobs it dispatches. */
  readonly nodeId = `gw-${ulid().slice(-8).toLowerCase()}`;
  /** Where spans go (the no-op tracer unless `telemetry.otlp` is set); closed last at stop, so that every span is exported. */
  private readonly tracing: Tracing;
  private jobClients: Subscription | undefined;
  private readonly taskRelay: TaskRelay;
  private taskAnswers: Subscription | undefined;
  private consoleParts: ConsoleSources | undefined;
  /** Where the HTTP front really listens, once it does (port 0 picks one): the approval page's default base. */
  private httpAddress: string | undefined;
  /** `auth.oauth` as the HTTP front applies it, one for every listener. */
  private readonly oauth: OAuthResource | undefined;

  constructor(
    readonly config: GatehouseConfig,
    bundle: PolicyBundle,
    private readonly ports: GatewayPorts,
    private readonly log: Logger,
    private readonly options: GatewayOptions = {},
  ) {
    const nodeId = this.nodeId;
    const tracing = (this.tracing = ports.tracing ?? openTracing(config, 'gatehouse', nodeId, log));
    this.kernel = new Kernel(bundle);
    const oauth = config.auth?.oauth;
    this.oauth = oauth && ports.tokenVerifier && new OAuthResource(ports.tokenVerifier, oauth);
    this.audit = new AuditTrail(ports.auditWriter, {
      writeTimeoutMs: config.audit.writeTimeout,
      maxBacklog: config.limits.maxAuditBacklog,
      onError: (err) => log.error('audit write failed; calls are refused until it succeeds again (retrying)', { error: (err as Error).message }),
      ...(ports.auditSpill ? { spill: ports.auditSpill } : {}),
      log,
    });
    this.approvals = new ApprovalService(ports.approvalStore, this.audit, ports.clock, config.approvals.ttl, { groups: config.approvals.groups, log });
    this.runMarkers = ports.auditChains && new RunMarkers({ store: ports.auditChains, audit: this.audit, clock: ports.clock, log, replica: nodeId });
    const unprefixed = new Set(Object.entries(config.upstreams).filter(([, u]) => !isNamespaced(u)).map(([name]) => name));
    this.catalog = new ToolCatalog(
      log,
      (server) => !unprefixed.has(server),
      toolFactsFromConfig(config),
      (name) => ports.upstreams.get(name),
      () => ports.upstreams.keys(),
      ports.pins &&
        new ToolPins(
          ports.pins,
          ports.clock,
          (event) => this.audit.record({ tenant: 'default', at: ports.clock.now(), ...event }),
          (server) => config.upstreams[server]?.onDefinitionChange ?? 'quarantine',
          new PoisoningCheck((server) => config.upstreams[server]?.definitionScan ?? 'quarantine'),
          // The packs of the policy in force (a reload may add one): their tools.yaml digests pin first sights.
          (server, tool) => this.kernel.bundle.toolPins?.[server]?.[tool],
        ),
    );
    const timeouts = new Map(Object.entries(config.upstreams).map(([name, u]) => [name, u.timeout]));
    this.directory = new UpstreamDirectory(ports.upstreams, timeouts, log, unprefixed);
    const jobs = new JobTracker(this.audit, ports.clock);
    this.scheduler = new Scheduler(ports.bus, jobs, ports.clock, nodeId, { ...ports.scheduling, ...(ports.ledger ? { ledger: ports.ledger } : {}), log });
    const links = (this.approvalLinks = this.linksForApprovals());
    // Notices are claimed once in the shared Store, so replicas watching the same approvals send each once.
    const webhook = config.approvals.webhook;
    this.actionLinks = webhook?.links ? this.linksToAct(webhook.actAs, links.url) : undefined;
    this.notifications =
      ports.notifier &&
      new ApprovalNotifications(ports.approvalStore, ports.store, ports.notifier, { clock: ports.clock, pageUrl: links.url, ...(this.actionLinks ? { links: this.actionLinks } : {}), format: webhook?.format ?? 'plain' });
    const shadowBundle = loadShadowPolicy(config);
    const shadows = new ShadowPolicies(this.kernel, shadowBundle && new Kernel(shadowBundle));
    const pipeline = (this.pipeline = new CallPipeline({
      catalog: this.catalog,
      kernel: this.kernel,
      shadows,
      approvals: this.approvals,
      scheduler: this.scheduler,
      store: ports.store,
      audit: this.audit,
      log,
      clock: ports.clock,
      ...(ports.metrics ? { metrics: ports.metrics } : {}),
      tracer: tracing.tracer,
      ...(ports.sessionFacts ? { sessions: new SessionTracker(ports.sessionFacts, { idleMs: config.sessions.idle, windowMs: config.sessions.window }, log) } : {}),
      ...(ports.tokenExchange ? { tokenExchange: ports.tokenExchange } : {}),
      options: {
        holdBudgetMs: config.approvals.holdBudget,
        holdBudgetByClient: config.approvals.holdBudgetByClient,
        holdProgressEveryMs: HOLD_PROGRESS_EVERY_MS,
        decisionBudgetMs: config.kernel.decisionBudget,
        recordArguments: config.audit.recordArguments,
        upstreamTimeoutMs: (server) => this.directory.timeoutMs(server),
        placement: (server) => {
          const pool = ports.upstreams.get(server)?.pool;
          return pool ? { pool, remote: true } : { pool: server, remote: false };
        },
        approvalHint: links.hint,
        approvalUrl: links.url,
        approvalTtlMs: config.approvals.ttl,
        requestStates: async () => new RequestStateCodec(await requestStateKey({ dataDir: config.dataDir, ...(config.approvals.signingKey ? { signingKey: config.approvals.signingKey } : {}) })),
      },
    }));
    // Every replica runs its own copy of an upstream without a pool, in one queue group: a job may run on another replica than its client's.
    const clientFor = (jobId: string, replica: string) => (replica === nodeId ? pipeline.clientFor(jobId) : remoteJobClient(ports.bus, replica, jobId));
    this.executor = new Executor(ports.bus, ports.store, ports.clock, nodeId, (name) => ports.upstreams.get(name), clientFor, { tracer: tracing.tracer });
    // One replica at a time forwards each sink: the lease is a ledger lock (Redis across replicas).
    this.sinks = ports.auditSinks && new AuditSinks(ports.auditSinks, { lease: ports.ledger ?? SOLE_FORWARDER, holder: nodeId, clock: ports.clock, log });
    this.reconciler = ports.ledger && new Reconciler({ ledger: ports.ledger, store: ports.store, audit: this.audit, clock: ports.clock, log, holder: nodeId, resubmit: (dead) => pipeline.resubmit(dead) });
    const builtins = new BuiltinTools(this.approvals, { links, progressEveryMs: HOLD_PROGRESS_EVERY_MS });
    const tasks = new CallTasks(nodeId);
    this.taskRelay = new TaskRelay(ports.bus, nodeId, tasks);
    const governed = new GovernedRequests(this.kernel, this.catalog, pipeline, this.directory, this.subscriptions);
    let taskKey: Promise<Buffer> | undefined;
    const upstreamTaskKey = () => (taskKey ??= purposeKey({ dataDir: config.dataDir, ...(config.approvals.signingKey ? { signingKey: config.approvals.signingKey } : {}) }, 'upstream-tasks'));
    const upstreamTasks = new UpstreamTasks(upstreamTaskKey, (server) => this.directory.get(server), (server) => this.directory.timeoutMs(server));
    this.dispatcher = new Dispatcher(this.catalog, this.kernel, pipeline, this.directory, this.subscriptions, log, builtins, tasks, this.taskRelay, governed, upstreamTasks);
    this.onApproval = new ExecuteOnApproval(this.approvals, (approval) => pipeline.executeApproved(approval), pipeline.approvalGate.isWaitedOn, log);
    const reloading = { alsoWatch: deploymentPolicyFiles(config), audit: this.audit, clock: ports.clock, log };
    this.policies = new PolicyReloader({
      ...reloading,
      paths: config.policies,
      load: () => loadDeploymentPolicy(this.deployment()),
      kernel: this.kernel,
      // What a caller may list can change with the policy.
      onSwapped: () => {
        for (const list of ['tools', 'resources', 'prompts']) this.broadcast({ jsonrpc: '2.0', method: `notifications/${list}/list_changed` });
      },
    });
    this.shadowPolicies =
      shadows.draft &&
      new PolicyReloader({ ...reloading, paths: config.shadowPolicies, load: () => loadShadowPolicy(this.deployment())!, kernel: shadows.draft, onSwapped: () => {}, shadow: true });
  }

  /** What the stdio front uses, and every front through its Exchange. */
  stdioServices(): ExchangeServices {
    return {
      dispatcher: this.dispatcher,
      ...(this.ports.metrics ? { metrics: this.ports.metrics } : {}),
      tracer: this.tracing.tracer,
      sessions: { add: (session) => this.sessions.add(session), remove: (session) => this.removeSession(session) },
      notifyUpstreams: (method) => {
        for (const upstream of this.directory.all()) void upstream.notify(method);
      },
    };
  }

  /** What the HTTP front uses: besides a front's, the state its 2025 sessions share, `/healthz`, and the approver's API. */
  httpServices(): HttpFrontServices {
    const { approvals, dataDir } = this.config;
    return {
      ...this.stdioServices(),
      bus: this.ports.bus,
      store: this.ports.store,
      nodeId: this.nodeId,
      health: () => this.health(),
      listening: (url) => this.useHttpAddress(url),
      ...(this.oauth ? { oauth: this.oauth } : {}),
      ...(this.ports.metrics?.scrape ? { metricsEndpoint: { scrape: this.ports.metrics.scrape, ...(this.config.metrics.token ? { token: this.config.metrics.token } : {}) } } : {}),
      approver: {
        approvals: this.approvals,
        kernel: this.kernel,
        toolFacts: this.toolFacts,
        ...(this.pinDesk ? { pins: this.pinDesk } : {}),
        pageUrl: this.approvalLinks.url,
        ...this.auditViews(),
        console: this.console(),
        dataDir,
        signingKey: approvals.signingKey,
        publicUrl: approvals.publicUrl,
        ...(this.actionLinks ? { actionLinks: this.actionLinks } : {}),
      },
    };
  }

  /** The console pages' sources, made once: the chain status they hold keeps its last verification. */
  private console(): ConsoleSources {
    const { ports } = this;
    const reader = ports.auditReader ?? ports.auditChains;
    this.consoleParts ??= consoleSources({
      config: this.config,
      upstreams: () => this.directory.all(),
      restarts: this.restarts,
      catalog: this.catalog,
      ...(reader ? { reader } : {}),
      ...(ports.auditChains ? { chains: ports.auditChains } : {}),
      ...(ports.ledger ? { ledger: ports.ledger } : {}),
      now: () => ports.clock.now(),
    });
    return this.consoleParts;
  }

  /** The audit's calls for the API and the console, and the live tail of the chain the console's feed watches. */
  private auditViews(): { audit?: AuditQuery; activity?: AuditTail } {
    const reader = this.ports.auditReader ?? this.ports.auditChains;
    if (!reader) return {};
    const audit = new AuditQuery(reader);
    const source = this.ports.auditAppends ? { pushed: this.ports.auditAppends, reader } : { polled: reader };
    const activity = new AuditTail({ source, queries: audit, onError: (err) => this.log.warn('the live feed could not read the audit chain', { error: (err as Error).message }) });
    return { audit, activity };
  }

  /** How far each audit sink is behind, for the sinks this replica forwards (what /metrics reports). */
  sinkLag(): SinkLag[] {
    return this.sinks?.lag() ?? [];
  }

  /**
   * What `/healthz` answers: ok while calls can be served (the audit trail's last write succeeded and it accepts
   * calls, and in distributed mode NATS and Redis are up), with each upstream's state and, in distributed mode, the
   * links and the live workers per pool.
   */
  private health(): { ok: boolean } & Record<string, unknown> {
    const links = this.ports.links?.();
    const upstreams = Object.fromEntries(this.directory.all().map((u) => [u.name, u.state]));
    const audit = this.audit;
    return { ok: audit.healthy && audit.accepting && (links?.ok ?? true), audit: { ok: audit.healthy, accepting: audit.accepting, backlog: audit.backlog }, upstreams, ...(links ? { links } : {}) };
  }

  /**
   * Tells the gateway where its HTTP front listens (`http://host:port`), for approval links when there is no
   * `approvals.publicUrl`; the configured `listen.http` serves until then.
   */
  private useHttpAddress(url: string): void {
    // A wildcard bind is no address a browser can open: the page is on this machine's loopback too.
    this.httpAddress = url.replace(/\/mcp$/, '').replace(/\/+$/, '').replace(/^http:\/\/(0\.0\.0\.0|\[::\]):/, 'http://localhost:');
  }

  /** The action links, signed with the approvals signing key (any replica verifies them) and claimed in the shared Store. */
  private linksToAct(actAs: string, pageUrl: (id: string) => string | undefined): ActionLinks {
    const { dataDir, approvals } = this.config;
    const tokens = new ActionTokens(actionTokenKey({ dataDir, ...(approvals.signingKey ? { signingKey: approvals.signingKey } : {}) }));
    return new ActionLinks({ approvals: this.approvals, claims: this.ports.store, tokens, actAs, pageUrl, now: () => this.ports.clock.now() });
  }

  /** Where and how a human approves: the page (`<publicUrl or the HTTP address>/approvals/<id>`) and the CLI. */
  private linksForApprovals(): ApprovalLinks {
    const { approvals, listen, dataDir } = this.config;
    const configured = approvals.publicUrl?.replace(/\/+$/, '');
    const listening = listen.http ? `http://${listen.http.replace(/^(0\.0\.0\.0|\[::\]):/, 'localhost:')}` : undefined;
    const url = (id: string): string | undefined => {
      const base = configured ?? this.httpAddress ?? listening;
      return base ? `${base}/approvals/${encodeURIComponent(id)}` : undefined;
    };
    const hint = (id: string): string => {
      const page = url(id);
      const command = this.options.approveCommand?.(id) ?? `gatehouse approvals approve ${id} --data-dir ${dataDir}`;
      return `Approve it ${page ? `at ${page} or ` : ''}with \`${command}\`.`;
    };
    return { url, hint };
  }

  /**
   * The pins as the API and console decide them: a decision is applied here at once (the tool released or held, and
   * clients told `notifications/tools/list_changed`); other replicas apply it at their next listing or call of it.
   */
  private get pinDesk(): PinDecisions | undefined {
    const { pins, clock } = this.ports;
    if (!pins) return undefined;
    const desk = new PinDesk(pins, (event) => this.audit.record({ tenant: 'default', at: clock.now(), ...event }), () => clock.now());
    return {
      list: () => desk.list(),
      change: (name) => desk.change(name),
      decide: async (name, decision, by, seen) => {
        const pin = await desk.decide(name, decision, by, seen);
        await this.catalog.recheck();
        return pin;
      },
    };
  }

  /** The live catalog's facts of a namespaced tool (`<server>__<tool>`): what the kernel decides its calls on. */
  private readonly toolFacts = (call: Pick<DecisionInput, 'tool' | 'server' | 'kind'>): ToolFacts | undefined =>
    call.kind ? (this.directory.get(call.server) ? this.catalog.upstreamFacts(call.server) : undefined) : this.catalog.entries().find((e) => e.id === call.tool)?.facts;

  /** Records the catalog's tool facts for the CLI; a failure costs only that record, so it is logged, not thrown. */
  private recordCatalog(): void {
    const record = this.ports.recordCatalog;
    if (!record) return;
    try {
      const servers = Object.fromEntries([...this.ports.upstreams.values()].flatMap((u) => (u.serverInfo ? [[u.name, u.serverInfo]] : [])));
      record(JSON.stringify(recordCatalog(this.catalog.entries(), this.ports.clock.now(), servers), null, 2));
    } catch (err) {
      this.log.warn('could not record the tool catalog for `policy explain` and `policy test`', { error: (err as Error).message });
    }
  }

  /**
   * Applies packs beside the config's, with the same atomic reload as a policy edit: validated with the whole policy
   * first (GH_ERR_POLICY_INVALID, and nothing changes), then kept for every later reload. For `wrap`, which learns
   * only once its upstream has answered which pack fits it; one process's choice, so not for distributed mode.
   */
  addPacks(installs: readonly PackInstall[], actor: string): ReloadOutcome {
    loadDeploymentPolicy({ ...this.deployment(), packs: [...this.deployment().packs, ...installs] });
    this.addedPacks.push(...installs);
    this.shadowPolicies?.reload(actor);
    return this.policies.reload(actor);
  }

  /** What an upstream said of itself once it ran: its serverInfo name and the tools it lists; undefined before. */
  initialisedServer(name: string): InitialisedServer | undefined {
    const upstream = this.ports.upstreams.get(name);
    if (!upstream || upstream.state !== 'ready') return undefined;
    const tools = this.catalog.entries().filter((e) => e.server === name).map((e) => e.tool.name);
    return { ...(upstream.serverInfo ? { serverName: upstream.serverInfo.name } : {}), tools };
  }

  private deployment(): GatehouseConfig {
    return this.addedPacks.length === 0 ? this.config : { ...this.config, packs: [...this.config.packs, ...this.addedPacks] };
  }

  /** Re-reads the policy files now (SIGHUP, or a test); the watcher does the same when a file changes. */
  reloadPolicy(actor = 'operator'): ReloadOutcome {
    this.shadowPolicies?.reload(actor);
    return this.policies.reload(actor);
  }

  async start(): Promise<void> {
    // Before anything runs: what the last run left in doubt, and a torn chain repaired by this first write.
    await this.runMarkers?.started();
    await this.tracing.ready();
    this.scheduler.start();
    // Workers elsewhere reach the clients of the jobs this replica dispatched (elicitation, logging) through it.
    this.jobClients = serveJobClients(this.ports.bus, this.nodeId, this.pipeline.clientFor);
    // Other replicas ask this one about the 2025 tasks it runs.
    this.taskAnswers = this.taskRelay.serve();
    this.catalog.onChange(() => this.broadcast({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }));
    this.catalog.onChange(() => this.recordCatalog());
    await Promise.all([...this.ports.upstreams.values()].map((upstream) => this.startUpstream(upstream)));
    this.recordCatalog(); // also when nothing was listed: a record of an earlier run must not stand for this one
    // Approvals also expire when read; the sweep only records expiry on time, so a failure is worth a warning.
    this.sweeper = setInterval(() => void this.approvals.expireDue().catch((err: Error) => this.log.warn(`could not sweep expired approvals: ${err.message}`)), APPROVAL_SWEEP_MS);
    this.sweeper.unref();
    this.onApproval.start();
    this.notifications?.start();
    this.reconciler?.start();
    this.sinks?.start();
    if (this.config.kernel.watchPolicies && this.config.policies.length > 0) this.policies.watch();
    if (this.config.kernel.watchPolicies) this.shadowPolicies?.watch();
  }

  /** Takes no new work, ends the work under way (each call and DLQ retry records how it ended), then closes. */
  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.reconciler?.stop();
    this.onApproval.stop();
    this.approvals.stopWaiting();
    await this.notifications?.close();
    this.policies.close();
    this.shadowPolicies?.close();
    this.executor.stop();
    this.jobClients?.unsubscribe();
    this.taskAnswers?.unsubscribe();
    // Ends the jobs still waited on, and refuses those that come later: every call in progress now ends.
    this.scheduler.stop();
    await Promise.all([...this.ports.upstreams.values()].map((u) => u.close()));
    // Each call in progress, and each DLQ retry (its entry removed, `dlq.retried`), records how it ended before
    // the audit trail and the ledger close.
    await Promise.all([this.pipeline.idle(), this.reconciler?.idle()]);
    await this.runMarkers?.stopped();
    // What the trail holds is delivered within a bound, before the trail closes the store the sinks read.
    if (this.sinks) {
      await this.audit.flush();
      await this.sinks.stop().catch((err: Error) => this.log.warn('could not stop the audit sinks cleanly; they resume from their cursors at the next start', { error: err.message }));
    }
    try {
      // Rejects, after saying so at error level, when some records could not be written.
      await this.audit.close();
    } finally {
      // The spans of the calls just ended are exported before the process goes.
      await Promise.all([this.ports.bus.close(), this.ports.store.close(), this.ports.approvalStore.close(), this.ports.ledger?.close(), this.ports.pins?.close(), this.ports.sessionFacts?.close(), this.tracing.close()]);
    }
  }

  private removeSession(session: ClientSession): void {
    this.sessions.delete(session);
    for (const { uri, upstream } of this.subscriptions.dropSession(session)) {
      upstream.request('resources/unsubscribe', { uri }, { timeoutMs: 10_000 }).catch(() => undefined);
    }
  }

  /**
   * Sends a notification to every session that can receive one outside a request. A session whose stream another
   * replica holds is skipped: that replica sees the same event and tells it.
   */
  private broadcast(message: JsonRpcNotification, filter: (session: ClientSession) => boolean = () => true): void {
    for (const session of this.sessions) if (session.push && !session.relayed && filter(session)) session.push(message);
  }

  private async startUpstream(upstream: Upstream): Promise<void> {
    // An upstream a worker pool hosts runs its jobs there; this process only lists and reads through it.
    if (!upstream.pool) this.executor.serve(upstream.name);
    let wasDown = false;
    await upstream.start({
      state: (state) => {
        if (state === 'down') wasDown = true;
        if (state === 'ready') {
          if (wasDown) {
            this.ports.metrics?.upstreamRestarted(upstream.name);
            this.restarts.set(upstream.name, (this.restarts.get(upstream.name) ?? 0) + 1);
          }
          wasDown = false;
          this.catalog.refresh(upstream).catch((err: Error) => this.log.warn(`could not list the tools of ${upstream.name}: ${err.message}`));
          // A reconnected upstream has a fresh session: restore the log level and what clients still watch.
          void this.directory.restoreLogLevel(upstream);
          for (const uri of this.subscriptions.urisOn(upstream)) {
            upstream.request('resources/subscribe', { uri }, { timeoutMs: 10_000 }).catch((err: Error) => this.log.warn(`could not resubscribe to ${uri} on ${upstream.name}: ${err.message}`));
          }
        }
      },
      notification: (method, params) => this.onUpstreamNotification(upstream, method, params),
      serverRequest: undefined,
    });
    // Serve the first tools/list complete: an upstream that came up at start is listed before clients ask.
    await this.catalog.settled(upstream.name);
  }

  private onUpstreamNotification(upstream: Upstream, method: string, params: Record<string, unknown> | undefined): void {
    switch (method) {
      case 'notifications/tools/list_changed':
        this.catalog.refresh(upstream).catch((err: Error) => this.log.warn(`could not list the tools of ${upstream.name}: ${err.message}`));
        return;
      case 'notifications/resources/list_changed':
      case 'notifications/prompts/list_changed':
        this.broadcast({ jsonrpc: '2.0', method });
        return;
      case 'notifications/resources/updated':
        for (const session of this.subscriptions.subscribers(String(params?.uri))) session.push?.({ jsonrpc: '2.0', method, ...(params ? { params } : {}) });
        return;
      case 'notifications/message':
        this.broadcast({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }, (s) => s.wantsLog(String(params?.level)));
        return;
      default:
        this.log.debug(`ignored ${method} from ${upstream.name}`);
    }
  }
}
