import { canonicalize } from '../protocol/jcs.ts';
import { sha256Hex } from '../protocol/digest.ts';
import type { AuditEvent, AuditRecord, ChainHead } from './record.ts';

/** Domain separation: a record hash can never be confused with any other sha256 Gatehouse computes. */
const DOMAIN_PREFIX = 'gatehouse.audit.v1\n';

export function hashRecord(record: Omit<AuditRecord, 'hash'>): string {
  return 'sha256:' + sha256Hex(DOMAIN_PREFIX + canonicalize(record));
}

/** Links events onto a chain head: consecutive sequence numbers, each `prev` the hash before it. */
export function chainEvents(head: ChainHead, events: readonly AuditEvent[]): AuditRecord[] {
  const records: AuditRecord[] = [];
  let seq = head.seq;
  let prev = head.hash;
  for (const event of events) {
    seq++;
    const unhashed = { ...event, seq, prev };
    const hash = hashRecord(unhashed);
    records.push({ ...unhashed, hash });
    prev = hash;
  }
  return records;
}
