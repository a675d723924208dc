import { RedisScript } from './connection.ts';
import { VERSION_FIELD } from './session-hash.ts';

/** Operations sent in one script at most; more wait for the next. */
const MAX_BATCH = 256;

/** A read: per key, the version the instance holds ('' for none). */
export type ReadOp = ['r', string[]];
/** An update, per key: [expected version ('' for absent), new version ('' to leave it), TTL in ms, fields and values to set, fields to delete]. */
export type UpdateOp = ['u', [string, string, string, string[], string[]][]];

/**
 * One batch of session operations, run in order by one script. KEYS are the operations' keys in order; ARGV[1] is
 * the operations as JSON (one argument: the client encodes one string, not one per field), each a ReadOp or an
 * UpdateOp. Answers, per operation:
 * - a read, per key: 1 when the hash still holds the version sent, else its fields (HGETALL; empty for none);
 * - an update: 1 when every key held its expected version and the writes were made, else the fields of each key,
 *   writing nothing.
 */
export const SESSION_BATCH = new RedisScript(`
local out, k = {}, 0
for o, op in ipairs(cjson.decode(ARGV[1])) do
  local items = op[2]
  if op[1] == 'r' then
    local answers = {}
    for i, held in ipairs(items) do
      local key = KEYS[k + i]
      if held ~= '' and redis.call('HGET', key, '${VERSION_FIELD}') == held then answers[i] = 1 else answers[i] = redis.call('HGETALL', key) end
    end
    out[o] = answers
  else
    local held = true
    for i, p in ipairs(items) do
      if (redis.call('HGET', KEYS[k + i], '${VERSION_FIELD}') or '') ~= p[1] then held = false end
    end
    if held then
      for i, p in ipairs(items) do
        local key = KEYS[k + i]
        if p[2] ~= '' then
          if #p[5] > 0 then redis.call('HDEL', key, unpack(p[5])) end
          redis.call('HSET', key, '${VERSION_FIELD}', p[2], unpack(p[4]))
          redis.call('PEXPIRE', key, p[3])
        end
      end
      out[o] = 1
    else
      local current = {}
      for i = 1, #items do current[i] = redis.call('HGETALL', KEYS[k + i]) end
      out[o] = current
    end
  end
  k = k + #items
end
return out`);

interface Queued {
  op: ReadOp | UpdateOp;
  keys: readonly string[];
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

  constructor(private readonly run: (keys: string[], ops: string) => Promise<unknown[]>) {}

  read(keys: readonly string[], versions: string[]): Promise<(1 | string[])[]> {
    return this.submit(['r', versions], keys) as Promise<(1 | string[])[]>;
  }

  /** Resolves to 1 when written, else to the current fields of each key. */
  update(keys: readonly string[], items: UpdateOp[1]): Promise<1 | string[][]> {
    return this.submit(['u', items], keys) as Promise<1 | string[][]>;
  }

  private submit(op: ReadOp | UpdateOp, keys: readonly string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, keys, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.queue.splice(0, MAX_BATCH);
    if (this.queue.length > 0) setImmediate(() => this.flush());
    const keys: string[] = [];
    const ops: (ReadOp | UpdateOp)[] = [];
    for (const queued of batch) {
      for (const key of queued.keys) keys.push(key);
      ops.push(queued.op);
    }
    this.run(keys, JSON.stringify(ops)).then(
      (answers) => {
        for (let i = 0; i < batch.length; i++) batch[i].resolve(answers[i]);
      },
      (err: unknown) => {
        for (const queued of batch) queued.reject(err);
      },
    );
  }
}
