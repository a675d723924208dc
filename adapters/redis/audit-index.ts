import type { IndexedCall } from '../../src/ports.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { type RedisConnection, RedisScript, runRedis } from './connection.ts';

/** Records read per step when an index is brought up to a chain written before it existed. */
const BACKFILL_PAGE = 2_000;

/** The keys of one tenant's chain and index. */
export interface AuditKeys {
  head: string;
  log: string;
  job(jobId: string): string;
  session(session: string): string;
}

/** Index entries of a batch of records: which list gets which value. */
export interface IndexPushes {
  keys: string[];
  /** Pairs of (1-based position in `keys` after `offset`, value), flattened. */
  args: string[];
}

/**
 * Adds index entries when the index reached `from` (field `indexed` of the head hash). KEYS: head hash, then the
 * index lists. ARGV: from, to, then pairs (KEYS position, value). Returns 1 when added, 0 when another writer moved it.
 */
const BACKFILL = new RedisScript(`
if (redis.call('HGET', KEYS[1], 'indexed') or '0') ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('RPUSH', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'indexed', ARGV[2])
return 1`);

/** Index lists trimmed per script (each script holds Redis while it runs). */
const TRIM_KEYS = 50;

/**
 * Drops the entries up to a seq from the front of index lists: their entries are in seq order, so a binary search
 * finds how many, and one LTRIM drops them (an emptied list is gone). KEYS: the lists. ARGV: the seq.
 */
const TRIM_FRONT = new RedisScript(`
local through = tonumber(ARGV[1])
for i = 1, #KEYS do
  local lo, hi = 0, redis.call('LLEN', KEYS[i])
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if tonumber(string.match(redis.call('LINDEX', KEYS[i], mid), '^%d+')) <= through then lo = mid + 1 else hi = mid end
  end
  if lo > 0 then redis.call('LTRIM', KEYS[i], lo, -1) end
end
return 1`);

/**
 * The index of each Redis chain, kept in the same script as the append (RedisAuditStore's APPEND), so it cannot
 * drift: `audit:<tenant>:job:<jobId>` lists the seqs of a job's records, `audit:<tenant>:session:<session>` the
 * `<seq>\t<jobId>` of a session's `job.submitted` records, and the head hash's `indexed` field the seq it covers.
 * A chain written before the index existed (no `indexed`, or one behind the head) is backfilled from the list on
 * first use; appends extend the index only once it covers their head. Records read through it are checked (seq,
 * job id) against what was asked; a mismatch answers undefined, so the query scans. Entries up to the retention
 * anchor (`base` in the head hash) answer nothing, and retention drops them after its trim (`trim`).
 */
export class RedisAuditIndex {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keysOf: (tenant: string) => AuditKeys,
  ) {}

  /** The index entries of `records`, their keys numbered from `offset` + 1 (the KEYS before them are the script's own). */
  pushes(tenant: string, records: readonly AuditRecord[], offset: number): IndexPushes {
    const keys = this.keysOf(tenant);
    const positions = new Map<string, number>();
    const args: string[] = [];
    const push = (key: string, value: string) => {
      let at = positions.get(key);
      if (at === undefined) positions.set(key, (at = offset + positions.size + 1));
      args.push(String(at), value);
    };
    for (const record of records) {
      if (record.jobId === undefined) continue;
      push(keys.job(record.jobId), String(record.seq));
      if (record.type === 'job.submitted' && typeof record.data.session === 'string') push(keys.session(record.data.session), `${record.seq}\t${record.jobId}`);
    }
    return { keys: [...positions.keys()], args };
  }

  async sessionCalls(tenant: string, session: string): Promise<IndexedCall[] | undefined> {
    if (!(await this.ensure(tenant))) return undefined;
    const keys = this.keysOf(tenant);
    const [base, values] = await this.run(() => Promise.all([this.base(keys), this.redis.client.lrange(keys.session(session), 0, -1)]));
    return values.flatMap((value) => {
      const tab = value.indexOf('\t');
      const seq = Number(value.slice(0, tab));
      // Calls that started before the retention anchor answer nothing: their records are gone.
      return seq > base ? [{ seq, jobId: value.slice(tab + 1) }] : [];
    });
  }

  async jobRecords(tenant: string, jobIds: readonly string[]): Promise<AuditRecord[][] | undefined> {
    if (!(await this.ensure(tenant))) return undefined;
    const keys = this.keysOf(tenant);
    const seqs = (await this.run(() => this.pipelined(jobIds.map((jobId) => ['lrange', keys.job(jobId), '0', '-1'])))) as string[][];
    // Records up to the retention anchor were removed; a trim after this read makes the check below fail, so the query scans.
    const base = await this.run(() => this.base(keys));
    const wanted = seqs.flatMap((list, i) => list.map((seq) => ({ seq: Number(seq), jobId: jobIds[i] })).filter(({ seq }) => seq > base));
    const lines = (await this.run(() => this.pipelined(wanted.map(({ seq }) => ['lindex', keys.log, String(seq - 1 - base)])))) as Array<string | null>;
    const found = jobIds.map((): AuditRecord[] => []);
    for (const [k, { seq, jobId }] of wanted.entries()) {
      const line = lines[k];
      let record: AuditRecord | undefined;
      try {
        record = line === null ? undefined : (JSON.parse(line) as AuditRecord);
      } catch {
        record = undefined;
      }
      if (!record || record.seq !== seq || record.jobId !== jobId) return undefined;
      found[jobIds.indexOf(jobId)].push(record);
    }
    return found;
  }

  /** Drops the entries up to `throughSeq` of these jobs' and sessions' lists: retention removed their records. */
  async trim(tenant: string, jobIds: Iterable<string>, sessions: Iterable<string>, throughSeq: number): Promise<void> {
    const keys = this.keysOf(tenant);
    const lists = [...[...jobIds].map((jobId) => keys.job(jobId)), ...[...sessions].map((session) => keys.session(session))];
    for (let i = 0; i < lists.length; i += TRIM_KEYS) {
      await this.run(() => TRIM_FRONT.run(this.redis.client, lists.slice(i, i + TRIM_KEYS), [String(throughSeq)]));
    }
  }

  /**
   * Brings the index up to the head, for a chain written (in part) before it existed; false when a record will not
   * parse (the scan reports it).
   */
  private async ensure(tenant: string): Promise<boolean> {
    const keys = this.keysOf(tenant);
    for (;;) {
      const [seq, indexed, kept] = await this.run(() => this.redis.client.hmget(keys.head, 'seq', 'indexed', 'base'));
      const from = Number(indexed ?? 0);
      const head = Number(seq ?? 0);
      const base = Number(kept ?? 0);
      if (from >= head) return true;
      // Retention sets `indexed` past what it removes: `from` is never before the first kept record.
      const lines = await this.run(() => this.redis.client.lrange(keys.log, from - base, Math.min(head, from + BACKFILL_PAGE) - 1 - base));
      if (lines.length === 0) return true;
      let records: AuditRecord[];
      try {
        records = lines.map((line) => JSON.parse(line) as AuditRecord);
      } catch {
        return false;
      }
      const pushes = this.pushes(tenant, records, 1);
      await this.run(() => BACKFILL.run(this.redis.client, [keys.head, ...pushes.keys], [String(from), String(from + records.length), ...pushes.args]));
    }
  }

  /** How many of the chain's oldest records retention removed. */
  private async base(keys: AuditKeys): Promise<number> {
    return Number((await this.redis.client.hget(keys.head, 'base')) ?? 0);
  }

  private async pipelined(commands: string[][]): Promise<unknown[]> {
    if (commands.length === 0) return [];
    const replies = (await this.redis.client.pipeline(commands).exec()) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw err;
      return reply;
    });
  }

  private run<T>(command: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, 'GH_ERR_AUDIT_UNAVAILABLE', command);
  }
}
