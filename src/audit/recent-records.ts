import type { AuditRecord } from '../protocol/audit-record.ts';

/**
 * The records this process appended last, per tenant, as the chain writer stored them: what lets the audit sinks
 * forward a chain that grows without reading it back from the store. A tenant's tail is kept contiguous (a gap,
 * where another writer appended, starts it anew) and bounded; a sink that is further behind reads the store.
 */
export class RecentRecords {
  private readonly tails = new Map<string, AuditRecord[]>();

  /** `capacity` records per tenant are kept at least (up to twice that, trimmed in one go). */
  constructor(private readonly capacity: number) {}

  /** The chain writer's listener: `records` were just stored, in order, at the end of `tenant`'s chain. */
  readonly appended = (tenant: string, records: readonly AuditRecord[]): void => {
    if (records.length === 0) return;
    const tail = this.tails.get(tenant);
    if (tail && tail[tail.length - 1].seq + 1 === records[0].seq) {
      tail.push(...records);
      if (tail.length > 2 * this.capacity) tail.splice(0, tail.length - this.capacity);
    } else {
      this.tails.set(tenant, records.slice(-this.capacity));
    }
  };

  /** Up to `limit` records from `fromSeq` on, when this process holds `fromSeq`; undefined when the store must be read. */
  from(tenant: string, fromSeq: number, limit: number): AuditRecord[] | undefined {
    const tail = this.tails.get(tenant);
    if (!tail || fromSeq < tail[0].seq || fromSeq > tail[tail.length - 1].seq) return undefined;
    const start = fromSeq - tail[0].seq;
    return tail.slice(start, start + limit);
  }
}
