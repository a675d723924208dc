import type { AuditStore } from '../ports.ts';
import type { AuditEvent, ChainHead } from '../protocol/audit-record.ts';
import { chainEvents } from '../protocol/audit-chain.ts';

/** Where buffered audit events go: chained onto each tenant's chain and stored, or rejected as a whole. */
export interface AuditWriter {
  /** Resolves once every event is stored; rejects with none of a tenant's events stored past the failure. */
  write(batch: ReadonlyMap<string, readonly AuditEvent[]>): Promise<void>;
  close(): Promise<void>;
}

/**
 * Chains events onto the head of their tenant's chain and appends them with a compare-and-swap, re-chaining
 * when another writer (the CLI, another replica) got there first. A tenant that fails is reported in the
 * rejection's `failed` list; the tenants before it stay written.
 *
 * The head its own last append left is the expected one next time: the compare-and-swap catches another
 * writer, so asking the store first would only cost a read per batch, and the dispatch barrier makes a batch of
 * every call at low concurrency.
 */
export class ChainWriter implements AuditWriter {
  private readonly heads = new Map<string, ChainHead>();

  constructor(private readonly store: AuditStore) {}

  async write(batch: ReadonlyMap<string, readonly AuditEvent[]>): Promise<void> {
    const failed: string[] = [];
    let firstError: unknown;
    for (const [tenant, events] of batch) {
      try {
        let head = this.heads.get(tenant) ?? (await this.store.head(tenant));
        for (;;) {
          const records = chainEvents(head, events);
          const result = await this.store.append(tenant, head, records);
          if (result.ok) {
            const last = records.at(-1);
            if (last) this.heads.set(tenant, { seq: last.seq, hash: last.hash });
            break;
          }
          head = result.head;
        }
      } catch (err) {
        this.heads.delete(tenant); // what the store holds now is unknown: ask it next time
        failed.push(tenant);
        firstError ??= err;
      }
    }
    if (failed.length > 0) throw Object.assign(new Error(`audit write failed for ${failed.join(', ')}: ${(firstError as Error)?.message}`), { failed, cause: firstError });
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
