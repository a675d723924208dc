/**
 * The composition root of embedded mode: the one place that picks concrete adapters for the ports. The core
 * never imports an adapter; this file does, so the core stays swappable (distributed mode gets its own root).
 */
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { FilePinStore } from '../../adapters/file/pin-store.ts';
import { FileSessionFacts } from '../../adapters/file/session-facts.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { DEFAULT_SEGMENT_BYTES, FileAuditStore, type FileAuditStoreOptions } from '../../adapters/file/audit-store.ts';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import { FileSinkCursors } from '../../adapters/file/sink-cursors.ts';
import { spillToDataDir } from '../../adapters/file/audit-spill.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { writeDataFile } from '../../adapters/file/atomic-file.ts';
import { StdioUpstream } from '../../adapters/mcp/stdio-upstream.ts';
import type { LaunchedServer } from '../../adapters/mcp/stdio-launch.ts';
import { HttpUpstream } from '../../adapters/mcp/http-upstream.ts';
import { WebhookNotifier } from '../../adapters/http/webhook.ts';
import type { Clock, SinkCursors, Upstream } from '../ports.ts';
import type { Logger } from '../log.ts';
import { isStdioUpstream, type GatehouseConfig } from '../config/schema.ts';
import type { PolicyBundle } from '../kernel/bundle.ts';
import { loadDeploymentPolicy } from '../packs/deployment.ts';
import { Gateway, type GatewayOptions } from './gateway.ts';
import { ChainWriter } from '../audit/chain-writer.ts';
import { checkpointOptions } from './audit-signing.ts';
import { CATALOG_FILE } from '../kernel/authoring/recorded-catalog.ts';
import { createMetrics } from './metrics.ts';
import { callerTokenExchangeFor, tokenVerifierFor, upstreamCredentialFor } from './oauth.ts';
import { auditSinkPorts, deliveredBySinks, recentRecordsFor } from './audit-sinks.ts';
import { outboundGuardFor } from './outbound.ts';

/** `launched`: stdio servers already started (by `gatehouse wrap`, early), by upstream name, for their upstream to adopt. */
export function createUpstreams(config: GatehouseConfig, log: Logger, launched?: ReadonlyMap<string, LaunchedServer>): Map<string, Upstream> {
  const upstreams = new Map<string, Upstream>();
  // One message from an upstream (a stdio line, an HTTP body or SSE event) may be larger than one from a client.
  const maxUpstreamMessageBytes = config.limits.maxUpstreamMessageBytes ?? config.limits.maxMessageBytes * 16;
  const guard = outboundGuardFor(config);
  for (const [name, u] of Object.entries(config.upstreams)) {
    upstreams.set(
      name,
      isStdioUpstream(u)
        ? new StdioUpstream(name, { command: u.command, args: u.args, env: u.env, cwd: u.cwd, maxLineBytes: maxUpstreamMessageBytes, launched: launched?.get(name), ...(u.era ? { era: u.era } : {}) }, log)
        : new HttpUpstream(name, { url: u.url, headers: u.headers, maxMessageBytes: maxUpstreamMessageBytes, guard, ...upstreamCredentialFor(u, guard), ...(u.era ? { era: u.era } : {}) }, log),
    );
  }
  return upstreams;
}

/**
 * `clock` is the gateway's sense of time (approval expiry, run timeouts, audit times): tests pass one they can move
 * forward, rather than waiting out a lifetime.
 */
export function createEmbeddedGateway(config: GatehouseConfig, log: Logger, options: { bundle?: PolicyBundle; clock?: Clock; launched?: ReadonlyMap<string, LaunchedServer> } & GatewayOptions = {}): Gateway {
  const sinkCursors = config.audit.sinks.length > 0 ? new FileSinkCursors(config.dataDir) : undefined;
  const chains = new FileAuditStore(config.dataDir, { fsync: config.audit.fsync, log, now: () => (options.clock ?? systemClock).now(), segmentBytes: config.audit.segmentBytes ?? DEFAULT_SEGMENT_BYTES, ...retentionOf(config, sinkCursors) });
  const recent = recentRecordsFor(config);
  const approvalStore = new FileApprovalStore(config.dataDir);
  const upstreams = createUpstreams(config, log, options.launched);
  const auditWriter = new ChainWriter(chains, checkpointOptions(config, { atClose: true, now: () => (options.clock ?? systemClock).now() }), recent?.appended);
  let gateway: Gateway | undefined;
  const metrics = createMetrics(config, { approvals: approvalStore, upstreams, gateway: () => gateway });
  gateway = new Gateway(
    config,
    options.bundle ?? loadDeploymentPolicy(config),
    {
      bus: new MemoryBus(),
      store: new MemoryStore(),
      approvalStore,
      auditWriter,
      auditChains: chains,
      auditAppends: auditWriter,
      auditSpill: spillToDataDir(config.dataDir),
      clock: options.clock ?? systemClock,
      upstreams,
      ...tokenVerifierFor(config),
      ...callerTokenExchangeFor(config),
      ...(metrics ? { metrics } : {}),
      ledger: new FileJobLedger(config.dataDir),
      pins: new FilePinStore(config.dataDir),
      sessionFacts: new FileSessionFacts(config.dataDir, options.clock ?? systemClock),
      recordCatalog: (json) => writeDataFile(config.dataDir, CATALOG_FILE, json),
      ...(config.approvals.webhook ? { notifier: new WebhookNotifier({ url: config.approvals.webhook.url, headers: config.approvals.webhook.headers, dispatcher: outboundGuardFor(config).dispatcher() }, log) } : {}),
      ...(sinkCursors ? { auditSinks: auditSinkPorts(config, sinkCursors, chains, recent) } : {}),
    },
    log,
    options.approveCommand ? { approveCommand: options.approveCommand } : {},
  );
  return gateway;
}

/** `audit.retention`, held back to what every configured sink has delivered (a dead sink never loses a record). */
function retentionOf(config: GatehouseConfig, cursors: SinkCursors | undefined): Pick<FileAuditStoreOptions, 'retention'> {
  const { retention } = config.audit;
  if (!retention) return {};
  const delivered = deliveredBySinks(config, cursors);
  return { retention: { ...(retention.maxAge !== undefined ? { maxAgeMs: retention.maxAge } : {}), ...(retention.maxBytes !== undefined ? { maxBytes: retention.maxBytes } : {}), ...(delivered ? { delivered } : {}) } };
}

