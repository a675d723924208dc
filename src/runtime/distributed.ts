/**
 * The composition roots of distributed mode: gateway replicas and workers on NATS (the bus) and Redis (state).
 * The core is the same as embedded mode's; only the adapters behind the ports differ, and which upstreams a
 * process runs itself: a gateway runs those without a `pool`, a worker those of its pool.
 */
import { randomUUID } from 'node:crypto';
import { RedisPinStore } from '../../adapters/redis/pin-store.ts';
import { RedisSessionFacts } from '../../adapters/redis/session-facts.ts';
import { NatsBus } from '../../adapters/nats/bus.ts';
import { RedisStore } from '../../adapters/redis/store.ts';
import { RedisApprovalStore } from '../../adapters/redis/approval-store.ts';
import { RedisAuditStore } from '../../adapters/redis/audit-store.ts';
import { RedisJobLedger } from '../../adapters/redis/job-ledger.ts';
import { RedisSinkCursors } from '../../adapters/redis/sink-cursors.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { spillToDataDir } from '../../adapters/file/audit-spill.ts';
import { writeDataFile } from '../../adapters/file/atomic-file.ts';
import { WebhookNotifier } from '../../adapters/http/webhook.ts';
import type { AuditStore, Bus, JobLedger, PinStore, SinkCursors, Upstream } from '../ports.ts';
import { ApprovalService } from '../approvals/service.ts';
import { AuditTrail } from '../audit/trail.ts';
import type { Logger } from '../log.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import { GatewayError } from '../errors.ts';
import type { PolicyBundle } from '../kernel/bundle.ts';
import { loadDeploymentPolicy } from '../packs/deployment.ts';
import { Gateway, type GatewayOptions } from './gateway.ts';
import { PoolUpstream } from '../scheduler/pool-upstream.ts';
import { ChainWriter } from '../audit/chain-writer.ts';
import { CATALOG_FILE } from '../kernel/authoring/recorded-catalog.ts';
import { WorkerRegistry } from '../scheduler/worker-registry.ts';
import { createUpstreams } from './embedded.ts';
import { outboundGuardFor } from './outbound.ts';
import { Subjects } from '../protocol/cap.ts';
import { checkpointOptions } from './audit-signing.ts';
import { createMetrics } from './metrics.ts';
import { callerTokenExchangeFor, tokenVerifierFor } from './oauth.ts';
import { auditSinkPorts, deliveredBySinks, recentRecordsFor } from './audit-sinks.ts';
import type { RedisRetentionOptions } from '../../adapters/redis/audit-retention.ts';

/** `audit.retention.interval` unset: the Redis chains are trimmed once a minute (and at start). */
const RETENTION_INTERVAL_MS = 60_000;
/** The ledger lock whose holder runs retention. */
const RETENTION_LOCK = 'audit-retention';


/**
 * What JetStream keeps when `nats.jetstream` is on: the queues of the configured pools (`job.<pool>`), where a job
 * waits while no worker is live and survives a NATS restart. Jobs sent straight to a live worker, and those for
 * the upstreams the replicas run themselves, stay on core NATS.
 */
function durableSubjects(config: GatehouseConfig): string[] {
  return [...new Set(Object.values(config.upstreams).flatMap((u) => (u.pool ? [Subjects.pool(u.pool)] : [])))];
}

function endpoint<K extends 'nats' | 'redis'>(config: GatehouseConfig, key: K): NonNullable<GatehouseConfig[K]> {
  const value = config.mode === 'distributed' ? config[key] : undefined;
  if (!value) throw new GatewayError('GH_ERR_CONFIG_INVALID', `this needs mode: distributed with ${key}: { url } in the config`);
  return value;
}

export const natsOf = (config: GatehouseConfig) => endpoint(config, 'nats');
export const redisOf = (config: GatehouseConfig) => endpoint(config, 'redis');

export function connectBus(config: GatehouseConfig, name: string, log: Logger): Promise<NatsBus> {
  const nats = natsOf(config);
  const subjects = durableSubjects(config);
  return NatsBus.connect({ url: nats.url, name, log, ...(nats.jetstream && subjects.length > 0 ? { jetstream: { subjects } } : {}) });
}

/** A gateway replica: stateless itself, so any number can serve behind a load balancer. */
export async function createDistributedGateway(config: GatehouseConfig, log: Logger, bundle: PolicyBundle = loadDeploymentPolicy(config), options: GatewayOptions = {}): Promise<Gateway> {
  const [redis, nats] = [redisOf(config), natsOf(config)];
  const opened: { close(): Promise<void> }[] = [];
  try {
    const bus = await connectBus(config, 'gatehouse-gateway', log);
    opened.push(bus);
    const store = await RedisStore.connect({ url: redis.url });
    opened.push(store);
    const approvalStore = await RedisApprovalStore.connect({ url: redis.url });
    opened.push(approvalStore);
    const sinkCursors = config.audit.sinks.length > 0 ? await RedisSinkCursors.connect({ url: redis.url }) : undefined;
    if (sinkCursors) opened.push(sinkCursors);
    const ledger = await RedisJobLedger.connect({ url: redis.url });
    opened.push(ledger);
    const auditStore = await RedisAuditStore.connect({ url: redis.url, ...retentionOf(config, sinkCursors, ledger, log) });
    opened.push(auditStore);
    const pins = await RedisPinStore.connect({ url: redis.url });
    opened.push(pins);
    const sessionFacts = await RedisSessionFacts.connect({ url: redis.url });
    opened.push(sessionFacts);
    const recent = recentRecordsFor(config);
    const workers = new WorkerRegistry(bus, systemClock, { intervalMs: config.workers.heartbeatInterval, log });
    const upstreams = gatewayUpstreams(config, bus, log);
    let gateway: Gateway | undefined;
    const metrics = createMetrics(config, { approvals: approvalStore, upstreams, gateway: () => gateway }, {
      links: () => ({ nats: bus.connected, redis: store.connected }),
      // One read of the DLQ per scrape; a scrape with Redis down reports none rather than failing.
      deadLetters: async () => (await ledger.listDead().catch(() => [])).length,
    });
    gateway = new Gateway(
      config,
      bundle,
      {
        bus,
        store,
        approvalStore,
        auditWriter: new ChainWriter(auditStore, checkpointOptions(config, { atClose: true }), recent?.appended),
        auditReader: auditStore,
        // Redis unreachable at shutdown: what could not be written stays on this replica's disk.
        auditSpill: spillToDataDir(config.dataDir),
        clock: systemClock,
        upstreams,
        ledger,
        pins,
        sessionFacts,
        recordCatalog: (json) => writeDataFile(config.dataDir, CATALOG_FILE, json),
        links: () => ({ ok: bus.connected && store.connected, nats: bus.connected ? 'up' : 'down', redis: store.connected ? 'up' : 'down', workers: workers.livePerPool() }),
        ...tokenVerifierFor(config),
      ...callerTokenExchangeFor(config),
        ...(metrics ? { metrics } : {}),
        scheduling: { workers, queueWithoutWorkers: nats.jetstream, dispatchTimeoutMs: 3 * config.workers.heartbeatInterval, receiptTimeoutMs: config.workers.heartbeatInterval, deadlineSweepMs: Math.min(1_000, config.workers.heartbeatInterval) },
        ...(config.approvals.webhook ? { notifier: new WebhookNotifier({ url: config.approvals.webhook.url, headers: config.approvals.webhook.headers, dispatcher: outboundGuardFor(config).dispatcher() }, log) } : {}),
        ...(sinkCursors ? { auditSinks: auditSinkPorts(config, sinkCursors, auditStore, recent) } : {}),
      },
      log,
      options,
    );
    return gateway;
  } catch (err) {
    await Promise.allSettled(opened.map((o) => o.close()));
    throw err;
  }
}

/**
 * `audit.retention` on the Redis chains, held back to what every configured sink has delivered. The replica holding
 * the `audit-retention` lock in the ledger runs it (one reads the lists, not all); the trim is one script that
 * compares the head, so two replicas never remove a record twice even when the lock changes hands mid-run.
 */
function retentionOf(config: GatehouseConfig, cursors: SinkCursors | undefined, ledger: JobLedger, log: Logger): { retention?: RedisRetentionOptions } {
  const { retention } = config.audit;
  if (!retention) return {};
  const delivered = deliveredBySinks(config, cursors);
  const holder = `retention-${randomUUID()}`;
  return {
    retention: {
      ...(retention.maxAge !== undefined ? { maxAgeMs: retention.maxAge } : {}),
      ...(retention.maxBytes !== undefined ? { maxBytes: retention.maxBytes } : {}),
      ...(delivered ? { delivered } : {}),
      intervalMs: retention.interval ?? RETENTION_INTERVAL_MS,
      lease: { acquire: (ttlMs) => ledger.acquireLock(RETENTION_LOCK, holder, ttlMs), release: () => ledger.releaseLock(RETENTION_LOCK, holder) },
      now: () => systemClock.now(),
      log,
    },
  };
}

/** The upstreams a gateway replica sees: pool-hosted ones through their workers, the rest run here. */
function gatewayUpstreams(config: GatehouseConfig, bus: Bus, log: Logger): Map<string, Upstream> {
  const local = createUpstreams({ ...config, upstreams: Object.fromEntries(Object.entries(config.upstreams).filter(([, u]) => !u.pool)) }, log);
  const upstreams = new Map<string, Upstream>();
  for (const [name, u] of Object.entries(config.upstreams)) upstreams.set(name, u.pool ? new PoolUpstream(name, u.pool, bus, log) : local.get(name)!);
  return upstreams;
}

/** Approvals in Redis, for the commands that read or change them while replicas run. */
export async function openRedisApprovals(config: GatehouseConfig): Promise<{ approvals: ApprovalService; close(): Promise<void> }> {
  const { store, audit, close } = await openWithAudit(config, (url) => RedisApprovalStore.connect({ url }));
  return { approvals: new ApprovalService(store, audit, systemClock, config.approvals.ttl), close };
}

/** The audit chains in Redis, for the commands that read them. */
export function openRedisAudit(config: GatehouseConfig): Promise<AuditStore> {
  return RedisAuditStore.connect({ url: redisOf(config).url });
}

/** The dead-letter queue in Redis, and the audit trail, for `gatehouse dlq` while replicas run. */
/** The pinned tool definitions in Redis (`gatehouse tools`), with the audit trail decisions on them are recorded in. */
export async function openRedisPins(config: GatehouseConfig): Promise<{ pins: PinStore; audit: AuditTrail; close(): Promise<void> }> {
  const { store, audit, close } = await openWithAudit(config, (url) => RedisPinStore.connect({ url }));
  return { pins: store, audit, close };
}

export async function openRedisDeadLetters(config: GatehouseConfig): Promise<{ ledger: JobLedger; audit: AuditTrail; close(): Promise<void> }> {
  const { store, audit, close } = await openWithAudit(config, (url) => RedisJobLedger.connect({ url }));
  return { ledger: store, audit, close };
}

/** A Redis adapter opened with an audit trail on the same Redis (what a command changes, it records). */
async function openWithAudit<T extends { close(): Promise<void> }>(config: GatehouseConfig, open: (url: string) => Promise<T>): Promise<{ store: T; audit: AuditTrail; close(): Promise<void> }> {
  const { url } = redisOf(config);
  const store = await open(url);
  let auditStore: RedisAuditStore;
  try {
    auditStore = await RedisAuditStore.connect({ url });
  } catch (err) {
    await store.close();
    throw err;
  }
  const audit = new AuditTrail(new ChainWriter(auditStore, checkpointOptions(config, { atClose: false })), { flushIntervalMs: 0, spill: spillToDataDir(config.dataDir) });
  return {
    store,
    audit,
    close: async () => {
      await audit.close();
      await Promise.allSettled([store.close(), auditStore.close()]);
    },
  };
}
