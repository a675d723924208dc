import { RedisScript } from './connection.ts';
import { VERSION_FIELD } from './session-hash.ts';

/** Operations sent in one script at most; more wait for the next. */
const MAX_BATCH = 256;

/**
 * One batch of session operations, run in order by one script: ARGV[1] is their count, then per operation its kind
 * (`r` read, `u` update), its number of keys (taken in order from KEYS), and its arguments:
 * - read, per key: the version the instance holds ('' for none). Answers per key 1 when the hash still holds
 *   that version, else its fields (HGETALL; empty for none).
 * - update, per key: the expected version ('' for absent), the new version ('' to leave the record as it is), its
 *   TTL (ms), the number of field-and-value items to set, those, the number of fields to delete, those. Answers 1
 *   when every key held its expected version and the writes were made, else the fields of each key, writing nothing.
 */
export const SESSION_BATCH = new RedisScript(`
local out = {}
local k = 0
local a = 2
for op = 1, tonumber(ARGV[1]) do
  local kind, n = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  if kind == 'r' then
    local answers = {}
    for i = 1, n do
      local key = KEYS[k + i]
      if ARGV[a] ~= '' and redis.call('HGET', key, '${VERSION_FIELD}') == ARGV[a] then answers[i] = 1 else answers[i] = redis.call('HGETALL', key) end
      a = a + 1
    end
    out[op] = answers
  else
    local plans, held = {}, true
    for i = 1, n do
      local nset = tonumber(ARGV[a + 3])
      local ndel = tonumber(ARGV[a + 4 + nset])
      plans[i] = { ARGV[a], ARGV[a + 1], ARGV[a + 2], a + 4, nset, a + 5 + nset, ndel }
      a = a + 5 + nset + ndel
      if (redis.call('HGET', KEYS[k + i], '${VERSION_FIELD}') or '') ~= plans[i][1] then held = false end
    end
    if held then
      for i = 1, n do
        local key, p = KEYS[k + i], plans[i]
        if p[2] ~= '' then
          if p[7] > 0 then redis.call('HDEL', key, unpack(ARGV, p[6], p[6] + p[7] - 1)) end
          if p[5] > 0 then redis.call('HSET', key, '${VERSION_FIELD}', p[2], unpack(ARGV, p[4], p[4] + p[5] - 1)) else redis.call('HSET', key, '${VERSION_FIELD}', p[2]) end
          redis.call('PEXPIRE', key, p[3])
        end
      end
      out[op] = 1
    else
      local current = {}
      for i = 1, n do current[i] = redis.call('HGETALL', KEYS[k + i]) end
      out[op] = current
    end
  end
  k = k + n
end
return out`);

interface Queued {
  kind: 'r' | 'u';
  keys: readonly string[];
  args: readonly (string | number)[];
  resolve(answer: unknown): void;
  reject(err: unknown): void;
}

/**
 * Group commit for session facts: the reads and updates that calls in flight ask for during one turn of the event
 * loop go to Redis as one script, in the order asked. On this kind of machine one command costs tens of µs of CPU
 * (most of it the socket write and read), whatever it carries, so concurrent calls share that cost; a lone call
 * waits for nothing (the batch leaves at the end of the turn it was asked in). Atomic per operation, as each was
 * alone; a failure of the script fails every operation of the batch.
 */
export class SessionBatch {
  private queue: Queued[] = [];

  constructor(private readonly run: (keys: string[], args: (string | number)[]) => Promise<unknown[]>) {}

  read(keys: readonly string[], versions: readonly string[]): Promise<(1 | string[])[]> {
    return this.submit('r', keys, versions) as Promise<(1 | string[])[]>;
  }

  /** Resolves to 1 when written, else to the current fields of each key. */
  update(keys: readonly string[], args: readonly (string | number)[]): Promise<1 | string[][]> {
    return this.submit('u', keys, args) as Promise<1 | string[][]>;
  }

  private submit(kind: 'r' | 'u', keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, keys, args, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const ops = this.queue.splice(0, MAX_BATCH);
    if (this.queue.length > 0) setImmediate(() => this.flush());
    const keys: string[] = [];
    const args: (string | number)[] = [ops.length];
    for (const op of ops) {
      keys.push(...op.keys);
      args.push(op.kind, op.keys.length, ...op.args);
    }
    this.run(keys, args).then(
      (answers) => ops.forEach((op, i) => op.resolve(answers[i])),
      (err: unknown) => ops.forEach((op) => op.reject(err)),
    );
  }
}
