import type { AuditIndex, AuditStore, IndexedCall } from '../../src/ports.ts';
import { GENESIS, type AuditRecord, type ChainHead } from '../../src/protocol/audit-record.ts';
import { chainEvents, recordLine } from '../../src/protocol/audit-chain.ts';
import { GatewayError } from '../../src/errors.ts';
import { RedisAuditIndex } from './audit-index.ts';
import { RedisAuditRetention, type RedisRetentionOptions } from './audit-retention.ts';
import { type RedisConnection, type RedisConnectionOptions, RedisScript, closeRedis, connectRedis, runRedis } from './connection.ts';

/** Records per LRANGE while reading a chain. */
const READ_PAGE = 500;

/** How often retention re-chains its `audit.pruned` on a head other writers keep moving before it waits for its next run. */
const TRIM_ATTEMPTS = 10;

/**
 * The compare-and-swap on a chain head, and the index entries of the records appended (RedisAuditIndex). KEYS:
 * head hash, record list, tenant set, then the index lists. ARGV: expected seq, expected hash, genesis hash, new
 * seq, new hash, tenant, the number of records, the record lines, then pairs (KEYS position, value) of index
 * entries, pushed only when the index covers the head (`indexed`; a new chain's does). Returns {1} when appended,
 * {0, seq, hash} of the current head when it is not the expected one, and {-1, seq, hash, length} when the list no
 * longer reaches the head (its newest records were removed; `length` counts those retention removed, `base`): nothing
 * is appended to a cut chain.
 */
const APPEND = new RedisScript(`
local head = redis.call('HMGET', KEYS[1], 'seq', 'hash', 'indexed', 'base')
local seq = head[1] or '0'
local hash = head[2] or ARGV[3]
local length = redis.call('LLEN', KEYS[2]) + tonumber(head[4] or '0')
if length ~= tonumber(seq) then return {-1, seq, hash, length} end
if seq ~= ARGV[1] or hash ~= ARGV[2] then return {0, seq, hash} end
local last = 7 + tonumber(ARGV[7])
for i = 8, last, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, last)))
end
redis.call('HSET', KEYS[1], 'seq', ARGV[4], 'hash', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[6])
if (head[3] or (seq == '0' and '0')) == seq then
  for i = last + 1, #ARGV, 2 do
    redis.call('RPUSH', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
  end
  redis.call('HSET', KEYS[1], 'indexed', ARGV[4])
end
return {1}`);

/**
 * Retention's cut, all in one script so replicas running it at once never remove a record twice. KEYS: head hash,
 * record list, anchor. ARGV: expected seq, expected hash, genesis hash, then the `audit.pruned` record chained on the
 * expected head (its seq, hash, line), the anchor's seq and line. Appends `audit.pruned` as APPEND would (the same
 * compare-and-swap and cut check), stores the anchor, removes the records up to it (LTRIM) and sets `base` (records
 * removed: the record of seq n is at index n-1-base) and `indexed` past them. Returns what APPEND returns, or {2}
 * when the chain is already anchored at or past that seq, {3} when the anchor is not the record at its place.
 */
const TRIM = new RedisScript(`
local head = redis.call('HMGET', KEYS[1], 'seq', 'hash', 'indexed', 'base')
local seq = head[1] or '0'
local hash = head[2] or ARGV[3]
local base = tonumber(head[4] or '0')
local length = redis.call('LLEN', KEYS[2]) + base
if length ~= tonumber(seq) then return {-1, seq, hash, length} end
if seq ~= ARGV[1] or hash ~= ARGV[2] then return {0, seq, hash} end
local anchor = tonumber(ARGV[7])
if anchor <= base then return {2} end
if redis.call('LINDEX', KEYS[2], anchor - 1 - base) ~= ARGV[8] then return {3} end
redis.call('RPUSH', KEYS[2], ARGV[6])
redis.call('HSET', KEYS[1], 'seq', ARGV[4], 'hash', ARGV[5])
local indexed = head[3]
if indexed == seq then indexed = ARGV[4] end
if tonumber(indexed or '0') < anchor then indexed = ARGV[7] end
redis.call('SET', KEYS[3], ARGV[8])
redis.call('LTRIM', KEYS[2], anchor - base, -1)
redis.call('HSET', KEYS[1], 'base', ARGV[7], 'indexed', indexed)
return {1}`);

/** KEYS: head hash, record list. ARGV: seq, count. Returns {base, the lines from that seq (or the first kept one) on}. */
const PAGE = new RedisScript(`
local base = tonumber(redis.call('HGET', KEYS[1], 'base') or '0')
local start = math.max(0, tonumber(ARGV[1]) - 1 - base)
return {base, redis.call('LRANGE', KEYS[2], start, start + tonumber(ARGV[2]) - 1)}`);

/** What retention records, in `audit.pruned`'s data, when it removes the records up to an anchor. */
export interface PrunedData {
  records: number;
  /** The removed records' lines in UTF-8 bytes, each with the newline an export writes after it. */
  bytes: number;
  fromSeq: number;
  throughSeq: number;
  anchor: ChainHead;
  reason: string;
}

/**
 * Audit chains in Redis, one per tenant: `audit:<tenant>:head` (a hash: seq, hash, base) and `audit:<tenant>:log`
 * (a list of record lines, the record of seq n at index n-1), and `audit:tenants`. `append` is one Lua script
 * that compares the head and appends, so replicas never fork a chain. The head hash is the head kept apart from
 * the chain: a list shorter than the head's seq was cut, and is refused (GH_ERR_AUDIT_TRUNCATED) before anything
 * is appended. A Redis command is all or nothing, so a list never holds a torn record. Redis persistence (AOF)
 * decides what survives a Redis crash (`audit.fsync` is the file store's): run it with `appendonly yes` for an
 * audit trail. Retention (RedisAuditRetention) removes a chain's oldest records up to a signed checkpoint, kept in
 * `audit:<tenant>:anchor`; the head hash's `base` counts them, so the record of seq n is then at index n-1-base.
 */
export class RedisAuditStore implements AuditStore, AuditIndex {
  private readonly index: RedisAuditIndex;
  private retention: RedisAuditRetention | undefined;

  private constructor(private readonly redis: RedisConnection) {
    this.index = new RedisAuditIndex(redis, (tenant) => ({
      head: this.headKey(tenant),
      log: this.logKey(tenant),
      job: (jobId) => `${this.tenantKey(tenant)}:job:${encodeURIComponent(jobId)}`,
      session: (session) => `${this.tenantKey(tenant)}:session:${encodeURIComponent(session)}`,
    }));
  }

  /** With `retention`, it runs now and every `retention.intervalMs` until the store closes (RedisAuditRetention). */
  static async connect(options: RedisConnectionOptions & { retention?: RedisRetentionOptions }): Promise<RedisAuditStore> {
    const store = new RedisAuditStore(await connectRedis(options, 'GH_ERR_AUDIT_UNAVAILABLE'));
    if (options.retention) {
      store.retention = new RedisAuditRetention(store, options.retention);
      store.retention.start();
    }
    return store;
  }

  async head(tenant: string): Promise<ChainHead> {
    const [[, fields], [, kept]] = (await this.run(() => this.redis.client.multi().hmget(this.headKey(tenant), 'seq', 'hash', 'base').llen(this.logKey(tenant)).exec())) as [
      [unknown, (string | null)[]],
      [unknown, number],
    ];
    const [seq, hash, base] = fields;
    const head = seq === null || hash === null ? GENESIS : { seq: Number(seq), hash };
    const length = kept + Number(base ?? 0);
    if (length !== head.seq) throw this.cut(tenant, head, length);
    return head;
  }

  async recordedHead(tenant: string): Promise<ChainHead | undefined> {
    const [seq, hash] = await this.run(() => this.redis.client.hmget(this.headKey(tenant), 'seq', 'hash'));
    return seq === null || hash === null ? undefined : { seq: Number(seq), hash };
  }

  /** Redis stores each record whole. */
  async tornTail(): Promise<undefined> {
    return undefined;
  }

  async append(tenant: string, expected: ChainHead, records: AuditRecord[]): Promise<{ ok: true } | { ok: false; head: ChainHead }> {
    if (records.length === 0) {
      const head = await this.head(tenant);
      return head.seq === expected.seq && head.hash === expected.hash ? { ok: true } : { ok: false, head };
    }
    // The list index of a record is its seq - 1: refuse records that do not continue the expected head.
    records.forEach((record, i) => {
      if (record.seq !== expected.seq + 1 + i) {
        throw new GatewayError('GH_ERR_INTERNAL', `audit record ${i} of tenant ${tenant} has seq ${record.seq}, not ${expected.seq + 1 + i}`);
      }
    });
    const last = records[records.length - 1];
    const pushes = this.index.pushes(tenant, records, 3);
    const reply = (await this.run(() =>
      APPEND.run(
        this.redis.client,
        [this.headKey(tenant), this.logKey(tenant), this.tenantsKey, ...pushes.keys],
        [String(expected.seq), expected.hash, GENESIS.hash, String(last.seq), last.hash, tenant, String(records.length), ...records.map(recordLine), ...pushes.args],
      ),
    )) as [number, string?, string?, number?];
    if (reply[0] === 1) return { ok: true };
    const head = { seq: Number(reply[1]), hash: reply[2]! };
    if (reply[0] === -1) throw this.cut(tenant, head, reply[3]!);
    return { ok: false, head };
  }

  async *read(tenant: string, options: { fromSeq?: number } = {}): AsyncIterable<AuditRecord> {
    const fromSeq = options.fromSeq ?? 0;
    for await (const { line, index } of this.lines(tenant, fromSeq)) {
      const record = this.parse(tenant, line, index);
      if (record.seq >= fromSeq) yield record;
    }
  }

  /**
   * The record lines from `fromSeq` on (from the first kept one when retention removed it), and each one's list index.
   * Each page is placed by the `base` read with it in one script, so a trim between two pages skips nothing kept.
   */
  async *lines(tenant: string, fromSeq = 0): AsyncIterable<{ line: string; index: number }> {
    for (let next = Math.max(1, fromSeq); ; ) {
      const [base, lines] = (await this.run(() => PAGE.run(this.redis.client, [this.headKey(tenant), this.logKey(tenant)], [String(next), String(READ_PAGE)]))) as [number, string[]];
      const start = Math.max(0, next - 1 - base);
      for (const [i, line] of lines.entries()) yield { line, index: start + i };
      if (lines.length < READ_PAGE) return;
      next = base + start + lines.length + 1;
    }
  }

  async *readBack(tenant: string): AsyncIterable<AuditRecord> {
    for (let end = -1; ; end -= READ_PAGE) {
      const lines = await this.run(() => this.redis.client.lrange(this.logKey(tenant), end - READ_PAGE + 1, end));
      for (let i = lines.length - 1; i >= 0; i--) yield this.parse(tenant, lines[i], `${end - READ_PAGE + 1 + i} from the end`);
      if (lines.length < READ_PAGE) return;
    }
  }

  /** The record retention anchored the chain on (`audit:<tenant>:anchor`), when it removed records. */
  async anchor(tenant: string): Promise<AuditRecord | undefined> {
    const line = await this.run(() => this.redis.client.get(this.anchorKey(tenant)));
    return line === null ? undefined : this.parse(tenant, line, 'anchor', `in ${this.anchorKey(tenant)}`);
  }

  /**
   * Removes the records up to `anchor` (a signed checkpoint, `line` as the list holds it), appending `audit.pruned`
   * (`data`) on the current head in the same script (TRIM). Re-chains it when another writer moved the head first.
   * False when the chain is already anchored at or past it (another replica trimmed it) or the head kept moving.
   */
  async trim(tenant: string, anchor: { seq: number; line: string }, data: PrunedData, at: number): Promise<boolean> {
    for (let attempt = 0; attempt < TRIM_ATTEMPTS; attempt++) {
      const head = await this.head(tenant);
      const [pruned] = chainEvents(head, [{ tenant, at, type: 'audit.pruned', actor: 'audit-store', data: { ...data } }]);
      const reply = (await this.run(() =>
        TRIM.run(
          this.redis.client,
          [this.headKey(tenant), this.logKey(tenant), this.anchorKey(tenant)],
          [String(head.seq), head.hash, GENESIS.hash, String(pruned.seq), pruned.hash, recordLine(pruned), String(anchor.seq), anchor.line],
        ),
      )) as [number, string?, string?, number?];
      if (reply[0] === 1) return true;
      if (reply[0] === 2) return false;
      if (reply[0] === 3) throw new GatewayError('GH_ERR_INTERNAL', `audit retention for tenant ${tenant}: the record of seq ${anchor.seq} is not the checkpoint it read there`);
      if (reply[0] === -1) throw this.cut(tenant, { seq: Number(reply[1]), hash: reply[2]! }, reply[3]!);
    }
    return false;
  }

  /** Drops the index entries of records retention removed (up to `throughSeq`), of these jobs and sessions. */
  trimIndex(tenant: string, jobIds: Iterable<string>, sessions: Iterable<string>, throughSeq: number): Promise<void> {
    return this.index.trim(tenant, jobIds, sessions, throughSeq);
  }

  sessionCalls(tenant: string, session: string): Promise<IndexedCall[] | undefined> {
    return this.index.sessionCalls(tenant, session);
  }

  jobRecords(tenant: string, jobIds: readonly string[]): Promise<AuditRecord[][] | undefined> {
    return this.index.jobRecords(tenant, jobIds);
  }

  async tenants(): Promise<string[]> {
    return (await this.run(() => this.redis.client.smembers(this.tenantsKey))).sort();
  }

  async close(): Promise<void> {
    await this.retention?.stop();
    await closeRedis(this.redis.client);
  }

  private parse(tenant: string, line: string, index: number | string, where = `at index ${index}`): AuditRecord {
    try {
      return JSON.parse(line) as AuditRecord;
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `the audit record ${where} of tenant ${tenant} in Redis at ${this.redis.endpoint} is not valid JSON`, {
        cause: err,
        data: { endpoint: this.redis.endpoint, key: this.logKey(tenant), index },
      });
    }
  }

  private cut(tenant: string, head: ChainHead, length: number): GatewayError {
    return new GatewayError(
      'GH_ERR_AUDIT_TRUNCATED',
      `the audit chain of tenant ${tenant} in Redis at ${this.redis.endpoint} was cut: ${this.logKey(tenant)} holds ${length} records, its head ${this.headKey(tenant)} says ${head.seq}. ` +
        'Nothing more is appended to it until the missing records are restored, or the head is set to the last record left; `gatehouse audit verify` shows both',
      { data: { tenant, endpoint: this.redis.endpoint, recordedHead: head, length } },
    );
  }

  private get tenantsKey(): string {
    return `${this.redis.prefix}audit:tenants`;
  }

  private tenantKey(tenant: string): string {
    return `${this.redis.prefix}audit:${encodeURIComponent(tenant)}`;
  }

  private headKey(tenant: string): string {
    return `${this.tenantKey(tenant)}:head`;
  }

  private logKey(tenant: string): string {
    return `${this.tenantKey(tenant)}:log`;
  }

  private anchorKey(tenant: string): string {
    return `${this.tenantKey(tenant)}:anchor`;
  }

  private run<T>(command: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, 'GH_ERR_AUDIT_UNAVAILABLE', command);
  }
}
