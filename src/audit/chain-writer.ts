import type { AuditStore } from '../ports.ts';
import type { AuditEvent, AuditRecord, ChainHead } from '../protocol/audit-record.ts';
import { chainEvents } from '../protocol/audit-chain.ts';
import { CHECKPOINT_TYPE, type CheckpointKey } from './checkpoint.ts';
import type { AppendFeed, AppendListener } from './tail.ts';

/** Where buffered audit events go: chained onto each tenant's chain and stored, or rejected as a whole. */
export interface AuditWriter {
  /** Resolves once every event is stored; rejects with none of a tenant's events stored past the failure. */
  write(batch: ReadonlyMap<string, readonly AuditEvent[]>): Promise<void>;
  /** At a clean close, once everything is written: signs what ends each chain written to (see `CheckpointOptions.atClose`). */
  seal?(): Promise<void>;
  close(): Promise<void>;
}

export interface CheckpointOptions {
  /** A checkpoint follows every record whose seq is a multiple of this (config `audit.checkpointEvery`; at least 2). */
  every: number;
  /** The signing key, loaded on first need (reading or creating the data dir's key file is not free). */
  key: () => Promise<CheckpointKey>;
  /** At `seal` (a clean close), sign the head of each chain this writer appended to, unless a checkpoint already ends it. */
  atClose: boolean;
  /** Milliseconds now, for the checkpoint's time. */
  now: () => number;
}

/**
 * Chains events onto the head of their tenant's chain and appends them with a compare-and-swap, re-chaining
 * when another writer (the CLI, another replica) got there first. A tenant that fails is reported in the
 * rejection's `failed` list; the tenants before it stay written.
 *
 * The head its own last append left is the expected one next time: the compare-and-swap catches another
 * writer, so asking the store first would only cost a read per batch, and the dispatch barrier makes a batch of
 * every call at low concurrency.
 *
 * With `checkpoints`, a signed `audit.checkpoint` is chained in the same append right after every record whose
 * seq is a multiple of `every`: the rule depends on the seq alone, so it holds across restarts, re-chaining and
 * writers, with no count to keep.
 */
export class ChainWriter implements AuditWriter, AppendFeed {
  private readonly heads = new Map<string, ChainHead>();
  private readonly listeners = new Set<AppendListener>();
  /** Chains appended to whose newest record (as this writer left it) is not a checkpoint. */
  private readonly unsealed = new Set<string>();
  private key: CheckpointKey | undefined;

  /** `onAppended` hears each batch of records once it is stored (the audit sinks' recent records), as `listen` does. */
  constructor(
    private readonly store: AuditStore,
    private readonly checkpoints?: CheckpointOptions,
    onAppended?: AppendListener,
  ) {
    if (onAppended) this.listeners.add(onAppended);
  }

  async write(batch: ReadonlyMap<string, readonly AuditEvent[]>): Promise<void> {
    const failed: string[] = [];
    let firstError: unknown;
    for (const [tenant, events] of batch) {
      try {
        await this.append(tenant, events);
      } catch (err) {
        this.heads.delete(tenant); // what the store holds now is unknown: ask it next time
        failed.push(tenant);
        firstError ??= err;
      }
    }
    if (failed.length > 0) throw Object.assign(new Error(`audit write failed for ${failed.join(', ')}: ${(firstError as Error)?.message}`), { failed, cause: firstError });
  }

  /** Hears every append this writer makes, with its records, once stored (the console's live feed). */
  listen(listener: AppendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async seal(): Promise<void> {
    if (this.checkpoints?.atClose) for (const tenant of this.unsealed) await this.append(tenant, [], true);
  }

  close(): Promise<void> {
    return this.store.close();
  }

  /** Appends `events`; with `seal`, also a checkpoint over what then ends the chain, unless a checkpoint does. */
  private async append(tenant: string, events: readonly AuditEvent[], seal = false): Promise<void> {
    const cached = this.heads.get(tenant);
    let head = cached ?? (await this.store.head(tenant));
    // A head this writer left is known not to be a checkpoint (or the chain would not be unsealed); another is read.
    let headIsCheckpoint = cached ? false : undefined;
    for (;;) {
      let records = this.checkpoints ? await this.chainWithCheckpoints(tenant, head, events) : chainEvents(head, events);
      if (seal && records.at(-1)?.type !== CHECKPOINT_TYPE) {
        const end = records.at(-1) ?? head;
        if (records.length > 0 || !(headIsCheckpoint ??= await this.endsInCheckpoint(tenant, head))) {
          records = [...records, ...chainEvents(end, [(await this.signingKey()).checkpoint(tenant, { seq: end.seq, hash: end.hash }, this.checkpoints!.now())])];
        }
      }
      const last = records.at(-1);
      if (!last) {
        this.unsealed.delete(tenant); // a seal found the chain already sealed
        return;
      }
      const result = await this.store.append(tenant, head, records);
      if (result.ok) {
        this.heads.set(tenant, { seq: last.seq, hash: last.hash });
        for (const listener of this.listeners) listener(tenant, records);
        if (last.type === CHECKPOINT_TYPE) this.unsealed.delete(tenant);
        else this.unsealed.add(tenant);
        // A full segment is sealed after a checkpoint, so that a signature anchors what follows it once retention removes it.
        // Never fails this append, whose records are stored: the next one tries again.
        if (this.checkpoints && last.type !== CHECKPOINT_TYPE && this.store.segmentFull?.(tenant)) await this.append(tenant, [], true).catch(() => this.heads.delete(tenant));
        return;
      }
      head = result.head;
      headIsCheckpoint = undefined;
    }
  }

  /** Chains `events` onto `head`, a checkpoint after each record whose seq is a multiple of `every`. */
  private async chainWithCheckpoints(tenant: string, head: ChainHead, events: readonly AuditEvent[]): Promise<AuditRecord[]> {
    const { every, now } = this.checkpoints!;
    // The common case, on every call's path: the batch ends before the next multiple of `every`.
    if (events.length < every - (head.seq % every)) return chainEvents(head, events);
    const records: AuditRecord[] = [];
    let at = head;
    let i = 0;
    while (i < events.length) {
      // Records up to the next multiple of `every`, then its checkpoint.
      const chunk = chainEvents(at, events.slice(i, i + every - (at.seq % every)));
      records.push(...chunk);
      i += chunk.length;
      const last = chunk.at(-1)!;
      at = { seq: last.seq, hash: last.hash };
      if (at.seq % every === 0) {
        const [checkpoint] = chainEvents(at, [(await this.signingKey()).checkpoint(tenant, at, now())]);
        records.push(checkpoint);
        at = { seq: checkpoint.seq, hash: checkpoint.hash };
      }
    }
    return records;
  }

  /** Whether the chain's newest record is a checkpoint (another writer may have sealed it). */
  private async endsInCheckpoint(tenant: string, head: ChainHead): Promise<boolean> {
    if (head.seq === 0) return true; // nothing to cover
    for await (const record of this.store.read(tenant, { fromSeq: head.seq })) return record.type === CHECKPOINT_TYPE;
    return false;
  }

  private async signingKey(): Promise<CheckpointKey> {
    return (this.key ??= await this.checkpoints!.key());
  }
}
