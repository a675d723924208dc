import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { ApprovalQuery, ApprovalStore } from '../../src/ports.ts';
import { upgradeApprovalRecord, type ApprovalRecord, type StoredApprovalRecord } from '../../src/protocol/approval-record.ts';
import { GatewayError } from '../../src/errors.ts';
import { type RedisConnection, type RedisConnectionOptions, RedisScript, closeRedis, connectRedis, redisFailure, runRedis } from './connection.ts';

/** A conflicting update is retried; this many conflicts in a row means something is wrong, not busy. */
const MAX_ATTEMPTS = 100;

/** KEYS: record, all ids, binding set. ARGV: id, record, channel, message. 1 if created, 0 if the id exists. */
const CREATE = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`);

/**
 * Compare-and-set on the record's stored text. KEYS: record, binding set of the new record. ARGV: expected text,
 * new text, id, channel, message. Returns {1} when written, {0, current} on a conflict, {-1} when absent.
 */
const UPDATE = new RedisScript(`
local current = redis.call('GET', KEYS[1])
if not current then return {-1} end
if current ~= ARGV[1] then return {0, current} end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return {1}`);

interface Change {
  /** The store instance that wrote it: that instance told its own listeners already. */
  from: string;
  record: ApprovalRecord;
}

/**
 * Approvals in Redis, shared by every replica on the same namespace:
 * - `approval:<id>` the record as JSON; `approvals` the set of all ids; `approvals:binding:<key>` the ids of one
 *   call, written by the same Lua script as the record, so the index never misses a record.
 * - `update` is optimistic: read, run the pure `update`, then a Lua compare-and-set on the exact text read. A
 *   conflict hands back the current text, and the update runs again on it.
 * - Every write publishes the record on `approvals:changes`; `watch` listens there on a second connection,
 *   subscribed before `connect` resolves. Pub/sub is at most once, so after the subscriber reconnects every
 *   approval that can still change is handed to the watchers again.
 */
export class RedisApprovalStore implements ApprovalStore {
  private readonly instance = randomUUID();
  private readonly listeners = new Set<(record: ApprovalRecord) => void>();

  private constructor(
    private readonly redis: RedisConnection,
    private readonly subscriber: Redis,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.received(message);
    });
    // After a reconnect: subscribe again (ourselves, not ioredis's autoResubscribe, whose subscribe nobody awaits:
    // a close during it was an unhandled rejection), then, since what was published in between is gone, tell the
    // listeners about every approval that can still change (they take repeats, as from the file store's poll).
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel).then(
        () => this.resync(),
        () => undefined, // going down again: the next reconnect tries again
      );
    });
  }

  static async connect(options: RedisConnectionOptions): Promise<RedisApprovalStore> {
    const redis = await connectRedis(options, 'GH_ERR_STATE_UNAVAILABLE');
    const subscriber = redis.client.duplicate({ autoResubscribe: false });
    subscriber.on('error', () => undefined); // reported by the commands of the main connection
    try {
      await subscriber.subscribe(`${redis.prefix}approvals:changes`);
    } catch (err) {
      subscriber.disconnect();
      await closeRedis(redis.client);
      throw redisFailure(err, redis, 'GH_ERR_STATE_UNAVAILABLE');
    }
    return new RedisApprovalStore(redis, subscriber);
  }

  async create(record: ApprovalRecord): Promise<void> {
    const upgraded = upgradeApprovalRecord(record);
    const text = JSON.stringify(upgraded);
    const created = await this.run(() =>
      CREATE.run(this.redis.client, [this.recordKey(upgraded.id), this.idsKey, this.bindingKey(upgraded.bindingKey)], [upgraded.id, text, this.channel, this.message(upgraded)]),
    );
    if (created !== 1) throw new GatewayError('GH_ERR_INTERNAL', `approval ${record.id} already exists`);
    this.emit(upgraded);
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const text = await this.run(() => this.redis.client.get(this.recordKey(id)));
    return text === null ? undefined : this.parse(id, text);
  }

  async list(query: ApprovalQuery = {}): Promise<ApprovalRecord[]> {
    const ids = await this.run(() => this.redis.client.smembers(query.bindingKey === undefined ? this.idsKey : this.bindingKey(query.bindingKey)));
    if (ids.length === 0) return [];
    const texts = await this.run(() => this.redis.client.mget(ids.map((id) => this.recordKey(id))));
    const records: ApprovalRecord[] = [];
    texts.forEach((text, i) => {
      if (text === null) return;
      const record = this.parse(ids[i], text);
      if (query.state && record.state !== query.state) return;
      if (query.tenant && record.tenant !== query.tenant) return;
      // A record whose key changed stays in its old binding set; the record itself says where it belongs now.
      if (query.bindingKey !== undefined && record.bindingKey !== query.bindingKey) return;
      records.push(record);
    });
    return records.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async update(id: string, update: (current: ApprovalRecord) => ApprovalRecord): Promise<ApprovalRecord> {
    let text = await this.run(() => this.redis.client.get(this.recordKey(id)));
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (text === null) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`);
      const current = this.parse(id, text);
      const next = update(current);
      if (next === current) return current;
      const nextText = JSON.stringify(next);
      const expected = text;
      const reply = (await this.run(() =>
        UPDATE.run(this.redis.client, [this.recordKey(id), this.bindingKey(next.bindingKey)], [expected, nextText, id, this.channel, this.message(next)]),
      )) as [number, string?];
      if (reply[0] === 1) {
        this.emit(next);
        return next;
      }
      text = reply[0] === -1 ? null : (reply[1] ?? null);
    }
    throw new GatewayError('GH_ERR_INTERNAL', `approval ${id}: ${MAX_ATTEMPTS} conflicting updates in a row`);
  }

  watch(listener: (record: ApprovalRecord) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await Promise.all([closeRedis(this.subscriber), closeRedis(this.redis.client)]);
  }

  private get channel(): string {
    return `${this.redis.prefix}approvals:changes`;
  }

  private get idsKey(): string {
    return `${this.redis.prefix}approvals`;
  }

  private recordKey(id: string): string {
    return `${this.redis.prefix}approval:${id}`;
  }

  private bindingKey(bindingKey: string): string {
    return `${this.redis.prefix}approvals:binding:${bindingKey}`;
  }

  private message(record: ApprovalRecord): string {
    return JSON.stringify({ from: this.instance, record } satisfies Change);
  }

  private parse(id: string, text: string): ApprovalRecord {
    try {
      const stored = JSON.parse(text) as StoredApprovalRecord;
      if (stored.id !== id || typeof stored.state !== 'string' || !Array.isArray(stored.history)) throw new Error('not an approval record');
      return upgradeApprovalRecord(stored);
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `approval ${id} in Redis at ${this.redis.endpoint} is corrupt: ${(err as Error).message}`, {
        cause: err,
        data: { endpoint: this.redis.endpoint, key: this.recordKey(id) },
      });
    }
  }

  private received(message: string): void {
    let change: Change;
    try {
      change = JSON.parse(message) as Change;
      change.record = upgradeApprovalRecord(change.record);
    } catch {
      return; // not ours: someone else published on the channel
    }
    if (change.from !== this.instance) this.emit(change.record);
  }

  private async resync(): Promise<void> {
    if (this.listeners.size === 0) return;
    const records = await this.list().catch(() => []); // still down: the next reconnect tries again
    for (const record of records) if (isLive(record)) this.emit(record);
  }

  private emit(record: ApprovalRecord): void {
    for (const listener of this.listeners) listener(record);
  }

  private run<T>(command: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', command);
  }
}

/** Whether an approval can still change (as in the file store): only those are replayed after a reconnect. */
function isLive(record: ApprovalRecord): boolean {
  return record.state === 'pending' || record.state === 'approved' || (record.state === 'consumed' && record.execution !== undefined && record.execution.takenBy === undefined);
}
