import type { AuditIndex, AuditStore, IndexedCall } from '../../src/ports.ts';
import { GENESIS, type AuditRecord, type ChainHead } from '../../src/protocol/audit-record.ts';
import { recordLine } from '../../src/protocol/audit-chain.ts';
import { GatewayError } from '../../src/errors.ts';
import { RedisAuditIndex } from './audit-index.ts';
import { type RedisConnection, type RedisConnectionOptions, RedisScript, closeRedis, connectRedis, runRedis } from './connection.ts';

/** Records per LRANGE while reading a chain. */
const READ_PAGE = 500;

/**
 * The compare-and-swap on a chain head, and the index entries of the records appended (RedisAuditIndex). KEYS:
 * head hash, record list, tenant set, then the index lists. ARGV: expected seq, expected hash, genesis hash, new
 * seq, new hash, tenant, the number of records, the record lines, then pairs (KEYS position, value) of index
 * entries, pushed only when the index covers the head (`indexed`; a new chain's does). Returns {1} when appended,
 * {0, seq, hash} of the current head when it is not the expected one, and {-1, seq, hash, length} when the list no
 * longer reaches the head (its newest records were removed): nothing is appended to a cut chain.
 */
const APPEND = new RedisScript(`
local head = redis.call('HMGET', KEYS[1], 'seq', 'hash', 'indexed')
local seq = head[1] or '0'
local hash = head[2] or ARGV[3]
local length = redis.call('LLEN', KEYS[2])
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
 * Audit chains in Redis, one per tenant: `audit:<tenant>:head` (a hash: seq, hash) and `audit:<tenant>:log`
 * (a list of record lines, the record of seq n at index n-1), and `audit:tenants`. `append` is one Lua script
 * that compares the head and appends, so replicas never fork a chain. The head hash is the head kept apart from
 * the chain: a list shorter than the head's seq was cut, and is refused (GH_ERR_AUDIT_TRUNCATED) before anything
 * is appended. A Redis command is all or nothing, so a list never holds a torn record. Redis persistence (AOF)
 * decides what survives a Redis crash (`audit.fsync` is the file store's): run it with `appendonly yes` for an
 * audit trail.
 */
export class RedisAuditStore implements AuditStore, AuditIndex {
  private readonly index: RedisAuditIndex;

  private constructor(private readonly redis: RedisConnection) {
    this.index = new RedisAuditIndex(redis, (tenant) => ({
      head: this.headKey(tenant),
      log: this.logKey(tenant),
      job: (jobId) => `${this.tenantKey(tenant)}:job:${encodeURIComponent(jobId)}`,
      session: (session) => `${this.tenantKey(tenant)}:session:${encodeURIComponent(session)}`,
    }));
  }

  static async connect(options: RedisConnectionOptions): Promise<RedisAuditStore> {
    return new RedisAuditStore(await connectRedis(options, 'GH_ERR_AUDIT_UNAVAILABLE'));
  }

  async head(tenant: string): Promise<ChainHead> {
    const [[, fields], [, length]] = (await this.run(() => this.redis.client.multi().hmget(this.headKey(tenant), 'seq', 'hash').llen(this.logKey(tenant)).exec())) as [
      [unknown, (string | null)[]],
      [unknown, number],
    ];
    const [seq, hash] = fields;
    const head = seq === null || hash === null ? GENESIS : { seq: Number(seq), hash };
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
    for (let start = Math.max(0, fromSeq - 1); ; start += READ_PAGE) {
      const lines = await this.run(() => this.redis.client.lrange(this.logKey(tenant), start, start + READ_PAGE - 1));
      for (const [i, line] of lines.entries()) {
        const record = this.parse(tenant, line, start + i);
        if (record.seq >= fromSeq) yield record;
      }
      if (lines.length < READ_PAGE) return;
    }
  }

  async *readBack(tenant: string): AsyncIterable<AuditRecord> {
    for (let end = -1; ; end -= READ_PAGE) {
      const lines = await this.run(() => this.redis.client.lrange(this.logKey(tenant), end - READ_PAGE + 1, end));
      for (let i = lines.length - 1; i >= 0; i--) yield this.parse(tenant, lines[i], `${end - READ_PAGE + 1 + i} from the end`);
      if (lines.length < READ_PAGE) return;
    }
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
    await closeRedis(this.redis.client);
  }

  private parse(tenant: string, line: string, index: number | string): AuditRecord {
    try {
      return JSON.parse(line) as AuditRecord;
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `the audit record at index ${index} of tenant ${tenant} in Redis at ${this.redis.endpoint} is not valid JSON`, {
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

  private run<T>(command: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, 'GH_ERR_AUDIT_UNAVAILABLE', command);
  }
}
