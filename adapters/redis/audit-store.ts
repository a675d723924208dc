import type { AuditStore } from '../../src/ports.ts';
import { GENESIS, type AuditRecord, type ChainHead } from '../../src/audit/record.ts';
import { recordLine } from '../../src/audit/chain.ts';
import { GatewayError } from '../../src/errors.ts';
import { type RedisConnection, type RedisConnectionOptions, RedisScript, closeRedis, connectRedis, runRedis } from './connection.ts';

/** Records per LRANGE while reading a chain. */
const READ_PAGE = 500;

/**
 * The compare-and-swap on a chain head. KEYS: head hash, record list, tenant set. ARGV: expected seq, expected
 * hash, genesis hash, new seq, new hash, tenant, then the record lines. Returns {1} when appended, else
 * {0, seq, hash} of the current head.
 */
const APPEND = new RedisScript(`
local head = redis.call('HMGET', KEYS[1], 'seq', 'hash')
local seq = head[1] or '0'
local hash = head[2] or ARGV[3]
if seq ~= ARGV[1] or hash ~= ARGV[2] then return {0, seq, hash} end
for i = 7, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'seq', ARGV[4], 'hash', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[6])
return {1}`);

/**
 * Audit chains in Redis, one per tenant: `audit:<tenant>:head` (a hash: seq, hash) and `audit:<tenant>:log`
 * (a list of record lines, the record of seq n at index n-1), and `audit:tenants`. `append` is one Lua script
 * that compares the head and appends, so replicas never fork a chain. Redis persistence (AOF) decides what
 * survives a Redis crash: run it with `appendonly yes` for an audit trail.
 */
export class RedisAuditStore implements AuditStore {
  private constructor(private readonly redis: RedisConnection) {}

  static async connect(options: RedisConnectionOptions): Promise<RedisAuditStore> {
    return new RedisAuditStore(await connectRedis(options, 'GH_ERR_AUDIT_UNAVAILABLE'));
  }

  async head(tenant: string): Promise<ChainHead> {
    const [seq, hash] = await this.run(() => this.redis.client.hmget(this.headKey(tenant), 'seq', 'hash'));
    return seq === null || hash === null ? GENESIS : { seq: Number(seq), hash };
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
    const reply = (await this.run(() =>
      APPEND.run(
        this.redis.client,
        [this.headKey(tenant), this.logKey(tenant), this.tenantsKey],
        [String(expected.seq), expected.hash, GENESIS.hash, String(last.seq), last.hash, tenant, ...records.map(recordLine)],
      ),
    )) as [number, string?, string?];
    if (reply[0] === 1) return { ok: true };
    return { ok: false, head: { seq: Number(reply[1]), hash: reply[2]! } };
  }

  async *read(tenant: string, options: { fromSeq?: number } = {}): AsyncIterable<AuditRecord> {
    const fromSeq = options.fromSeq ?? 0;
    for (let start = Math.max(0, fromSeq - 1); ; start += READ_PAGE) {
      const lines = await this.run(() => this.redis.client.lrange(this.logKey(tenant), start, start + READ_PAGE - 1));
      for (const [i, line] of lines.entries()) {
        let record: AuditRecord;
        try {
          record = JSON.parse(line) as AuditRecord;
        } catch (err) {
          throw new GatewayError('GH_ERR_DATA_CORRUPT', `audit record ${start + i + 1} of tenant ${tenant} in Redis at ${this.redis.endpoint} is not valid JSON`, {
            cause: err,
            data: { endpoint: this.redis.endpoint, key: this.logKey(tenant), index: start + i },
          });
        }
        if (record.seq >= fromSeq) yield record;
      }
      if (lines.length < READ_PAGE) return;
    }
  }

  async tenants(): Promise<string[]> {
    return (await this.run(() => this.redis.client.smembers(this.tenantsKey))).sort();
  }

  async close(): Promise<void> {
    await closeRedis(this.redis.client);
  }

  private get tenantsKey(): string {
    return `${this.redis.prefix}audit:tenants`;
  }

  private headKey(tenant: string): string {
    return `${this.redis.prefix}audit:${encodeURIComponent(tenant)}:head`;
  }

  private logKey(tenant: string): string {
    return `${this.redis.prefix}audit:${encodeURIComponent(tenant)}:log`;
  }

  private run<T>(command: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, 'GH_ERR_AUDIT_UNAVAILABLE', command);
  }
}
