import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Bus, Store, Subscription } from '../ports.ts';
import type { JsonRpcId, JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.ts';
import { LEGACY_PROTOCOL_VERSIONS, type LogLevel } from '../protocol/mcp.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Caller } from '../protocol/call.ts';
import type { Exchange } from './exchange.ts';
import { askedBy, ClientSession } from './session.ts';

/** A 2025 (Mcp-Session-Id) session as one replica holds it. */
export interface LegacyHttpSession {
  session: ClientSession;
  inflight: Map<JsonRpcId, AbortController>;
  /** The session's GET stream, when this replica holds it. */
  stream: ServerResponse | undefined;
  /** This replica's copy slot in the Store; -1 until the session is stored. */
  slot: number;
  /** When this replica last wrote the session's keys (ms), and that write until it settles. */
  written: number;
  writing: Promise<void>;
  storedLevel: LogLevel | undefined;
}

/** What any replica needs to serve a session that another one started. */
interface StoredSession {
  principal: string;
  tenant: string;
  protocolVersion: string;
  clientInfo?: { name: string; version: string };
  capabilities: Record<string, unknown>;
  logLevel?: LogLevel;
}

/** What one replica asks another about a session it holds a copy of. */
type ReplicaRequest =
  | { op: 'push'; session: string; message: JsonRpcNotification }
  | { op: 'answer'; session: string; response: JsonRpcResponse }
  | { op: 'cancel'; session: string; requestId: JsonRpcId; reason: string }
  | { op: 'level'; session: string; level: LogLevel | null }
  | { op: 'holds'; session: string }
  | { op: 'end'; session: string };

/** What the registry needs of the core: the state and bus shared with the other replicas, and this replica's id. */
export interface SessionRegistryServices {
  store: Store;
  bus: Bus;
  nodeId: string;
}

export const replicaSessionsSubject = (replica: string): string => `gh.replica.${replica}.sessions`;

const recordKey = (id: string) => `session:${id}`;
const streamKey = (id: string) => `session:${id}:stream`;
const copyKey = (id: string, slot: number) => `session:${id}:copy:${slot}`;
/**
 * How many replicas may hold a copy of one session at once. Each claims a slot, so that a DELETE can find and end
 * every copy before it answers: the Store port can list no keys.
 */
const MAX_COPIES = 32;
const REPLICA_TIMEOUT_MS = 2_000;

/**
 * The 2025 HTTP sessions, usable from any replica. Each replica keeps copies of the sessions it serves, so a
 * request costs no Store round trip; the Store holds what another replica needs to adopt one on a miss
 * (`session:<id>`, kept alive at most once a refresh interval per replica), which replicas hold a copy
 * (`session:<id>:copy:<n>`) and which holds the GET stream (`session:<id>:stream`). Replicas reach each other
 * on `gh.replica.<node>.sessions`: to push on the stream, settle an answer or a cancellation that reached
 * another replica than the request it concerns, spread a new log level, and end every copy on DELETE.
 */
export class SessionRegistry {
  private readonly local = new Map<string, LegacyHttpSession>();
  private readonly adopting = new Map<string, Promise<LegacyHttpSession | undefined>>();
  private readonly store: Store;
  private readonly bus: Bus;
  private readonly node: string;
  private readonly refreshMs: number;
  private readonly recordTtlMs: number;
  private readonly keyTtlMs: number;
  private readonly subscription: Subscription;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    services: SessionRegistryServices,
    private readonly exchange: Exchange,
    private readonly idleMs: number,
    private readonly log: Logger,
    /** 2025 sessions one caller may hold here (`limits.maxSessionsPerCaller`); a new one ends its least recently used. */
    private readonly maxPerCaller = 1_000,
  ) {
    ({ store: this.store, bus: this.bus, nodeId: this.node } = services);
    const sweepMs = Math.min(idleMs, 60_000);
    this.refreshMs = Math.min(60_000, idleMs / 4);
    // The record outlives its last refresh by the idle time. A copy's slot outlives the copy: a copy is dropped
    // up to a sweep after it idles out, and its slot was refreshed up to a refresh interval before.
    this.recordTtlMs = idleMs + this.refreshMs;
    this.keyTtlMs = idleMs + 3 * sweepMs;
    this.subscription = this.bus.reply(replicaSessionsSubject(this.node), (body) => this.onReplica(body as ReplicaRequest));
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  /** A session for an `initialize`; stored by `beforeAnswer` once that succeeds. */
  create(caller: Caller): LegacyHttpSession {
    return this.track(new ClientSession(randomUUID(), 'legacy', caller, LEGACY_PROTOCOL_VERSIONS[0], this.node), -1);
  }

  /** This replica's copy of a session of this caller: the hot path, so no I/O. */
  cached(id: string | undefined, caller: Caller): LegacyHttpSession | undefined {
    const entry = id === undefined ? undefined : this.local.get(id);
    return entry && sameCaller(entry.session.caller, caller) ? entry : undefined;
  }

  /** A session another replica started (or this one dropped), from the Store; undefined if unknown or another caller's. */
  adopt(id: string, caller: Caller): Promise<LegacyHttpSession | undefined> {
    const key = `${id}\u0000${caller.principal}\u0000${caller.tenant}`;
    let pending = this.adopting.get(key);
    if (!pending) {
      pending = this.load(id, caller).finally(() => this.adopting.delete(key));
      this.adopting.set(key, pending);
    }
    return pending;
  }

  /** A request on the session: it stays alive here, and in the Store at most once a refresh interval. */
  seen(entry: LegacyHttpSession): void {
    const now = Date.now();
    entry.session.lastSeen = now;
    if (now - entry.written >= this.refreshMs) this.refresh(entry, now);
  }

  /**
   * Stores what a request changed before its answer goes out, so the client's next request finds it on any
   * replica: a new session once `initialize` succeeds, a new log level. Undefined when nothing changed.
   */
  beforeAnswer(entry: LegacyHttpSession, method: string, response: JsonRpcResponse): Promise<void> | undefined {
    if (method === 'initialize') return 'result' in response ? this.persist(entry) : undefined;
    if (entry.slot < 0 || entry.session.logLevel === entry.storedLevel) return undefined;
    return this.spreadLevel(entry);
  }

  /**
   * Claims the session's GET stream for this replica: false while another replica still holds one. The Store
   * names the holder before the stream opens, so a push made anywhere once the client sees it open reaches it.
   */
  async claimStream(entry: LegacyHttpSession): Promise<boolean> {
    const { id } = entry.session;
    const holder = await this.store.get<string>(streamKey(id));
    if (holder && holder !== this.node && (await this.ask<{ holds?: boolean }>(holder, { op: 'holds', session: id }))?.holds) return false;
    await this.store.set(streamKey(id), this.node, { ttlMs: this.keyTtlMs });
    return true;
  }

  attachStream(entry: LegacyHttpSession, raw: ServerResponse, write: (message: JsonRpcNotification) => void): void {
    entry.stream = raw;
    entry.session.push = write;
    entry.session.relayed = false;
    raw.on('close', () => {
      if (entry.stream !== raw) return;
      entry.stream = undefined;
      this.relayPushes(entry);
    });
  }

  /** An answer from the client to a request that this or another replica sent it. */
  async answer(entry: LegacyHttpSession, response: JsonRpcResponse): Promise<void> {
    const asker = askedBy(response.id);
    if (!asker || asker === this.node) return this.exchange.response(entry.session, response);
    await this.ask(asker, { op: 'answer', session: entry.session.id, response });
  }

  /** A cancellation for a request that is not running here: it runs on some other replica holding a copy. */
  async cancelElsewhere(entry: LegacyHttpSession, requestId: JsonRpcId, reason: string): Promise<void> {
    const { id } = entry.session;
    await Promise.all((await this.copyHolders(id)).nodes.map((node) => this.ask(node, { op: 'cancel', session: id, requestId, reason })));
  }

  /** DELETE: the session ends on every replica before this resolves, so none serves it afterwards. */
  async end(entry: LegacyHttpSession): Promise<void> {
    const { id } = entry.session;
    // Deleted first: from here on no replica can adopt it (one that read it just before looks again after its claim).
    await this.store.delete(recordKey(id));
    const { nodes, slots } = await this.copyHolders(id);
    const unconfirmed = (await Promise.all(nodes.map(async (node) => ((await this.endOn(node, id)) ? [] : [node])))).flat();
    this.drop(entry, 'the session ended');
    await entry.writing;
    // A copy's refresh may have landed after the first delete; every copy has settled its writes by now.
    await Promise.all([recordKey(id), streamKey(id), ...slots.map((slot) => copyKey(id, slot))].map((key) => this.store.delete(key)));
    // A live replica that did not confirm may still serve its copy: the client is told to DELETE again.
    if (unconfirmed.length > 0) throw new GatewayError('GH_ERR_STATE_UNAVAILABLE', `replica ${unconfirmed.join(', ')} did not confirm that session ${id} ended; send DELETE again`);
  }

  /** Ends the copy on `node`: true once it confirmed, or when no replica answers there (it is gone, and its copy too). */
  private async endOn(node: string, id: string): Promise<boolean> {
    try {
      await this.bus.request(replicaSessionsSubject(node), { op: 'end', session: id } satisfies ReplicaRequest, { timeoutMs: REPLICA_TIMEOUT_MS });
      return true;
    } catch (err) {
      return isGatewayError(err, 'GH_ERR_UPSTREAM_UNAVAILABLE');
    }
  }

  /** Ends this replica's copies; the sessions live on in the Store for the other replicas. */
  close(): void {
    clearInterval(this.sweeper);
    this.subscription.unsubscribe();
    for (const entry of [...this.local.values()]) this.drop(entry, 'the gateway is stopping');
  }

  private track(session: ClientSession, slot: number): LegacyHttpSession {
    const entry: LegacyHttpSession = { session, inflight: new Map(), stream: undefined, slot, written: Date.now(), writing: Promise.resolve(), storedLevel: session.logLevel };
    this.local.set(session.id, entry);
    this.exchange.opened(session);
    this.relayPushes(entry);
    return entry;
  }

  private async persist(entry: LegacyHttpSession): Promise<void> {
    const { id } = entry.session;
    try {
      const [, slot] = await Promise.all([this.store.set(recordKey(id), stored(entry.session), { ttlMs: this.recordTtlMs }), this.claimSlot(id)]);
      Object.assign(entry, { slot, written: Date.now(), storedLevel: entry.session.logLevel });
    } catch (err) {
      this.drop(entry, 'the session could not be stored');
      throw err;
    }
  }

  private async load(id: string, caller: Caller): Promise<LegacyHttpSession | undefined> {
    const record = await this.store.get<StoredSession>(recordKey(id));
    if (!record || !sameCaller(record, caller)) return undefined;
    const slot = await this.claimSlot(id);
    // A DELETE that read the slots before this claim never told this copy: it must not outlive the record.
    if (!(await this.store.get(recordKey(id)))) {
      await this.store.delete(copyKey(id, slot));
      return undefined;
    }
    const session = new ClientSession(id, 'legacy', { principal: record.principal, tenant: record.tenant }, record.protocolVersion, this.node);
    session.capabilities = record.capabilities;
    session.clientInfo = record.clientInfo;
    session.logLevel = record.logLevel;
    const entry = this.track(session, slot);
    // The record may be near its expiry: the first request here refreshes it.
    entry.written = 0;
    return entry;
  }

  private async claimSlot(id: string): Promise<number> {
    for (let slot = 0; slot < MAX_COPIES; slot++) if (await this.store.setIfAbsent(copyKey(id, slot), this.node, { ttlMs: this.keyTtlMs })) return slot;
    throw new GatewayError('GH_ERR_INTERNAL', `more than ${MAX_COPIES} replicas hold session ${id}`);
  }

  /** The other replicas holding a copy of a session, and the slots found taken. */
  private async copyHolders(id: string): Promise<{ nodes: string[]; slots: number[] }> {
    const holders = await Promise.all(Array.from({ length: MAX_COPIES }, (_, slot) => this.store.get<string>(copyKey(id, slot))));
    const slots = holders.flatMap((node, slot) => (node ? [slot] : []));
    return { nodes: [...new Set(holders.filter((node): node is string => !!node && node !== this.node))], slots };
  }

  private refresh(entry: LegacyHttpSession, now: number): void {
    if (entry.slot < 0) return;
    entry.written = now;
    const { id } = entry.session;
    const writes = [this.store.set(recordKey(id), stored(entry.session), { ttlMs: this.recordTtlMs }), this.store.set(copyKey(id, entry.slot), this.node, { ttlMs: this.keyTtlMs })];
    if (entry.stream) writes.push(this.store.set(streamKey(id), this.node, { ttlMs: this.keyTtlMs }));
    entry.writing = Promise.all(writes).then(
      () => undefined,
      (err: Error) => this.log.warn(`could not refresh session ${id} in the state store: ${err.message}`),
    );
  }

  private async spreadLevel(entry: LegacyHttpSession): Promise<void> {
    const { id, logLevel } = entry.session;
    entry.storedLevel = logLevel;
    this.refresh(entry, Date.now());
    const [{ nodes }] = await Promise.all([this.copyHolders(id), entry.writing]);
    await Promise.all(nodes.map((node) => this.ask(node, { op: 'level', session: id, level: logLevel ?? null })));
  }

  /** Without a stream here, pushes go to whichever replica holds one (none: dropped, as with no stream at all). */
  private relayPushes(entry: LegacyHttpSession): void {
    const { id } = entry.session;
    entry.session.relayed = true;
    entry.session.push = (message) => {
      void this.store.get<string>(streamKey(id)).then(
        (holder) => (holder && holder !== this.node ? this.ask(holder, { op: 'push', session: id, message }) : undefined),
        (err: Error) => this.log.debug(`could not find the stream of session ${id}: ${err.message}`),
      );
    };
  }

  /** Asks another replica; one that is gone or slow has nothing to say about the session. */
  private async ask<T>(node: string, request: ReplicaRequest): Promise<T | undefined> {
    try {
      return (await this.bus.request(replicaSessionsSubject(node), request, { timeoutMs: REPLICA_TIMEOUT_MS })) as T;
    } catch (err) {
      this.log.debug(`replica ${node} did not take ${request.op} for session ${request.session}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async onReplica(request: ReplicaRequest): Promise<unknown> {
    const entry = this.local.get(request.session);
    switch (request.op) {
      case 'push':
        if (entry?.stream && !entry.session.relayed) entry.session.push?.(request.message);
        return {};
      case 'answer':
        if (entry) this.exchange.response(entry.session, request.response);
        return {};
      case 'cancel':
        entry?.inflight.get(request.requestId)?.abort(request.reason);
        return {};
      case 'level':
        if (entry) entry.session.logLevel = entry.storedLevel = request.level ?? undefined;
        return {};
      case 'holds':
        return { holds: entry?.stream !== undefined };
      case 'end':
        if (entry) {
          this.drop(entry, 'the session ended');
          await entry.writing;
        }
        return {};
      default:
        throw new GatewayError('GH_ERR_WIRE_INVALID', `unknown session operation ${String((request as { op?: unknown }).op)}`);
    }
  }

  /**
   * Before an `initialize`: while the caller holds `maxPerCaller` sessions here, its least recently used one ends (as a
   * DELETE ends it, on every replica), so a client that opens sessions without end cannot take the memory. O(sessions
   * here), on initialize only.
   */
  async makeRoomFor(caller: Caller): Promise<void> {
    const own = [...this.local.values()].filter((entry) => sameCaller(entry.session.caller, caller));
    if (own.length < this.maxPerCaller) return;
    own.sort((x, y) => x.session.lastSeen - y.session.lastSeen);
    const ending = own.slice(0, own.length - this.maxPerCaller + 1);
    for (const entry of ending) this.drop(entry, `the caller opened more than ${this.maxPerCaller} sessions; its least recently used ended`);
    await Promise.all(ending.map((entry) => this.end(entry).catch((err: unknown) => this.log.warn(`could not end session ${entry.session.id}: ${(err as Error).message}`))));
  }

  /** Forgets this replica's copy: what runs in it is cancelled, its stream closed. The Store is left alone. */
  private drop(entry: LegacyHttpSession, reason: string): void {
    if (this.local.get(entry.session.id) === entry) this.local.delete(entry.session.id);
    this.exchange.closed(entry.session);
    for (const controller of entry.inflight.values()) controller.abort(reason);
    entry.session.outgoing.failAll(reason);
    entry.session.push = undefined;
    const { stream } = entry;
    entry.stream = undefined;
    stream?.end();
  }

  /**
   * Drops copies idle here. The record is left to expire on its TTL, since another replica may still serve the
   * session; copies in use here keep it alive. A copy whose resource subscriptions live here stays while the
   * session lives anywhere: the upstream updates for them arrive on this replica.
   */
  private sweep(): void {
    const now = Date.now();
    const cutoff = now - this.idleMs;
    for (const entry of [...this.local.values()]) {
      if (entry.inflight.size > 0 || entry.stream) {
        if (now - entry.written >= this.refreshMs) this.refresh(entry, now);
      } else if (entry.session.lastSeen < cutoff) {
        void this.dropUnlessAlive(entry);
      }
    }
  }

  private async dropUnlessAlive(entry: LegacyHttpSession): Promise<void> {
    const { id } = entry.session;
    try {
      if (entry.slot >= 0 && entry.session.subscriptions.size > 0 && (await this.store.get(recordKey(id)))) {
        await this.store.set(copyKey(id, entry.slot), this.node, { ttlMs: this.keyTtlMs });
        return;
      }
      this.drop(entry, 'the session idled out');
      if (entry.slot >= 0) await this.store.delete(copyKey(id, entry.slot));
    } catch (err) {
      this.log.warn(`could not sweep session ${id}: ${(err as Error).message}`);
    }
  }
}

function stored(session: ClientSession): StoredSession {
  const { principal, tenant } = session.caller;
  return {
    principal,
    tenant,
    protocolVersion: session.protocolVersion,
    capabilities: session.capabilities,
    ...(session.clientInfo ? { clientInfo: session.clientInfo } : {}),
    ...(session.logLevel ? { logLevel: session.logLevel } : {}),
  };
}

const sameCaller = (a: { principal: string; tenant: string }, b: Caller): boolean => a.principal === b.principal && a.tenant === b.tenant;
