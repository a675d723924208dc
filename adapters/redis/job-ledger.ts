import { RETRY_TAKEN_TTL_MS, type DeadLetter, type JobLedger, type OpenJob, type RetryRequest } from '../../src/ports.ts';
import { type RedisConnection, type RedisConnectionOptions, RedisScript, closeRedis, connectRedis, runRedis } from './connection.ts';

/** KEYS: deadlines (zset), facts (hash). ARGV: deadline, job id, facts. */
const OPEN = new RedisScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`);

/** KEYS: deadlines, facts. ARGV: job id. */
const FINISH = new RedisScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1`);

/** KEYS: deadlines, facts. ARGV: now, limit. Returns id, facts, id, facts … ('' for facts that are gone). */
const OVERDUE = new RedisScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out`);

/** KEYS: dlq, retries, retry queue, taken, taken at. ARGV: job id. 1 if the entry existed. */
const REMOVE_DEAD = new RedisScript(`
local n = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return n`);

/** KEYS: dlq, retries, retry queue. ARGV: job id, request, requestedAt. 0 when there is no such entry. */
const REQUEST_RETRY = new RedisScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1]) end
return 1`);

/**
 * KEYS: dlq, retries, retry queue, taken, taken at. ARGV: taken (holder and time), time taken, taken-before bound.
 * Pops the oldest request, else one taken at or before the bound (its taker is gone), skipping those whose entry
 * was dropped meanwhile; returns {id, entry, request} or nil.
 */
const TAKE_RETRY = new RedisScript(`
while true do
  local ids = redis.call('ZRANGE', KEYS[3], 0, 0)
  if #ids == 0 then ids = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[3], 'LIMIT', 0, 1) end
  if #ids == 0 then return false end
  local id = ids[1]
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[5], id)
  local entry = redis.call('HGET', KEYS[1], id)
  local request = redis.call('HGET', KEYS[2], id)
  if entry and request then
    redis.call('HSET', KEYS[4], id, ARGV[1])
    redis.call('ZADD', KEYS[5], ARGV[2], id)
    return {id, entry, request}
  end
end`);

/** KEYS: lock. ARGV: holder, ttl ms. Takes a free lock or renews our own: 1; held by another: 0. */
const ACQUIRE = new RedisScript(`
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`);

/** KEYS: lock. ARGV: holder. Deletes the lock only while it is still ours. */
const RELEASE = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`);

type Taken = Pick<RetryRequest, 'takenBy' | 'takenAt'>;

/**
 * The job ledger in Redis, shared by every replica on the same namespace (keys under `gh:<namespace>:`):
 * - `jobs:open` a sorted set of job ids scored by deadline, `jobs:open:facts` a hash of their facts. `open` and
 *   `finish` are one EVALSHA each, which keeps both in step; `overdue` is one EVALSHA (ZRANGEBYSCORE + HGETs).
 * - `dlq` a hash of dead letters by job id; `dlq:retries` the retry requests, `dlq:retry-queue` the untaken ones
 *   scored by request time, `dlq:taken` who took which, and `dlq:taken-at` the taken ones scored by when (one taken
 *   `RETRY_TAKEN_TTL_MS` ago is offered again). Requests live beside the entry, never inside its JSON, so no script
 *   rewrites an entry (and its arguments) in Lua.
 * - `lock:<name>` a string holding its holder, with a PX expiry, taken and renewed by one Lua script and released
 *   by a compare-and-delete.
 */
export class RedisJobLedger implements JobLedger {
  private readonly keys: {
    deadlines: string;
    facts: string;
    dlq: string;
    retries: string;
    queue: string;
    taken: string;
    takenAt: string;
  };

  private constructor(private readonly redis: RedisConnection) {
    const p = redis.prefix;
    this.keys = { deadlines: `${p}jobs:open`, facts: `${p}jobs:open:facts`, dlq: `${p}dlq`, retries: `${p}dlq:retries`, queue: `${p}dlq:retry-queue`, taken: `${p}dlq:taken`, takenAt: `${p}dlq:taken-at` };
  }

  static async connect(options: RedisConnectionOptions): Promise<RedisJobLedger> {
    return new RedisJobLedger(await connectRedis(options, 'GH_ERR_STATE_UNAVAILABLE'));
  }

  async open(job: OpenJob): Promise<void> {
    await this.run(() => OPEN.run(this.redis.client, [this.keys.deadlines, this.keys.facts], [job.deadline, job.jobId, JSON.stringify(job)]));
  }

  async finish(jobId: string): Promise<void> {
    await this.run(() => FINISH.run(this.redis.client, [this.keys.deadlines, this.keys.facts], [jobId]));
  }

  async overdue(now: number, limit: number): Promise<OpenJob[]> {
    const flat = (await this.run(() => OVERDUE.run(this.redis.client, [this.keys.deadlines, this.keys.facts], [now, Math.max(0, Math.floor(limit))]))) as string[];
    const jobs: OpenJob[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      // An id whose facts are gone was half-finished (a script cannot be): nothing to end, so forget it.
      if (flat[i + 1] === '') await this.finish(flat[i]);
      else jobs.push(JSON.parse(flat[i + 1]) as OpenJob);
    }
    return jobs;
  }

  async deadLetter(entry: DeadLetter): Promise<void> {
    const { retry: _kept, ...stored } = entry;
    await this.run(() => this.redis.client.hset(this.keys.dlq, entry.jobId, JSON.stringify(stored)));
  }

  async listDead(): Promise<DeadLetter[]> {
    const [entries, retries, taken] = await this.run(() => Promise.all([this.redis.client.hgetall(this.keys.dlq), this.redis.client.hgetall(this.keys.retries), this.redis.client.hgetall(this.keys.taken)]));
    return Object.entries(entries)
      .map(([id, text]) => withRetry(text, retries[id], taken[id]))
      .sort((a, b) => a.at - b.at || a.jobId.localeCompare(b.jobId));
  }

  async getDead(jobId: string): Promise<DeadLetter | undefined> {
    const client = this.redis.client;
    const [text, retry, taken] = await this.run(() => Promise.all([client.hget(this.keys.dlq, jobId), client.hget(this.keys.retries, jobId), client.hget(this.keys.taken, jobId)]));
    return text === null ? undefined : withRetry(text, retry ?? undefined, taken ?? undefined);
  }

  async removeDead(jobId: string): Promise<boolean> {
    const removed = await this.run(() => REMOVE_DEAD.run(this.redis.client, [this.keys.dlq, this.keys.retries, this.keys.queue, this.keys.taken, this.keys.takenAt], [jobId]));
    return Number(removed) === 1;
  }

  async requestRetry(jobId: string, by: string, at: number): Promise<DeadLetter | undefined> {
    const request: RetryRequest = { requestedAt: at, requestedBy: by };
    const found = await this.run(() => REQUEST_RETRY.run(this.redis.client, [this.keys.dlq, this.keys.retries, this.keys.queue], [jobId, JSON.stringify(request), at]));
    return Number(found) === 1 ? this.getDead(jobId) : undefined;
  }

  async takeRetry(holder: string, at: number): Promise<DeadLetter | undefined> {
    const taken: Taken = { takenBy: holder, takenAt: at };
    const keys = [this.keys.dlq, this.keys.retries, this.keys.queue, this.keys.taken, this.keys.takenAt];
    const reply = (await this.run(() => TAKE_RETRY.run(this.redis.client, keys, [JSON.stringify(taken), at, at - RETRY_TAKEN_TTL_MS]))) as [string, string, string] | null;
    return reply ? withRetry(reply[1], reply[2], JSON.stringify(taken)) : undefined;
  }

  async acquireLock(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return Number(await this.run(() => ACQUIRE.run(this.redis.client, [this.lockKey(name)], [holder, Math.max(1, Math.ceil(ttlMs))]))) === 1;
  }

  async releaseLock(name: string, holder: string): Promise<void> {
    await this.run(() => RELEASE.run(this.redis.client, [this.lockKey(name)], [holder]));
  }

  async close(): Promise<void> {
    await closeRedis(this.redis.client);
  }

  private lockKey(name: string): string {
    return `${this.redis.prefix}lock:${name}`;
  }

  private run<T>(command: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, 'GH_ERR_STATE_UNAVAILABLE', command);
  }
}

function withRetry(text: string, request: string | undefined, taken: string | undefined): DeadLetter {
  const entry = JSON.parse(text) as DeadLetter;
  if (request === undefined) return entry;
  return { ...entry, retry: { ...(JSON.parse(request) as RetryRequest), ...(taken === undefined ? {} : (JSON.parse(taken) as Taken)) } };
}
