import { canonicalize } from './jcs.ts';
import { sha256Hex } from './digest.ts';
import type { AuditEvent, AuditRecord, ChainHead } from './audit-record.ts';

/** Domain separation: a record hash can never be confused with any other sha256 Gatehouse computes. */
const DOMAIN_PREFIX = 'gatehouse.audit.v1\n';

export function hashRecord(record: Omit<AuditRecord, 'hash'>): string {
  return hashCanonical(canonicalize(record));
}

const hashCanonical = (canonical: string): string => 'sha256:' + sha256Hex(DOMAIN_PREFIX + canonical);

/** The record's JSON line, written while hashing, so a store never serializes a record twice. */
const LINE = Symbol('line');

/** The JSON line for a record: the one made when it was chained, or a fresh one. */
export function recordLine(record: AuditRecord): string {
  return (record as AuditRecord & { [LINE]?: string })[LINE] ?? JSON.stringify(record);
}

/** Links events onto a chain head: consecutive sequence numbers, each `prev` the hash before it. */
export function chainEvents(head: ChainHead, events: readonly AuditEvent[]): AuditRecord[] {
  const records: AuditRecord[] = [];
  let seq = head.seq;
  let prev = head.hash;
  for (const event of events) {
    seq++;
    const canonical = canonicalRecord(event, seq, prev);
    const hash = hashCanonical(canonical);
    // Built field by field: an object spread here measured 25 times slower, on a path every call takes.
    const record: AuditRecord & { [LINE]?: string } = { seq, tenant: event.tenant, at: event.at, type: event.type, actor: event.actor, data: event.data, prev, hash };
    if (event.jobId !== undefined) record.jobId = event.jobId;
    // The canonical text plus the hash is a valid JSON line (keys need not be sorted to parse).
    record[LINE] = `${canonical.slice(0, -1)},"hash":"${hash}"}`;
    records.push(record);
    prev = hash;
  }
  return records;
}

/**
 * JCS of a record before it has its hash, written out for the fixed top-level keys (in sorted order) so the
 * hot path skips a generic walk; `data` still goes through canonicalize. Equal to canonicalize(record), which
 * verification uses, and a test holds the two together.
 */
export function canonicalRecord(event: AuditEvent, seq: number, prev: string): string {
  const q = JSON.stringify;
  return (
    `{"actor":${q(event.actor)},"at":${canonicalize(event.at)},"data":${canonicalize(event.data)}` +
    (event.jobId === undefined ? '' : `,"jobId":${q(event.jobId)}`) +
    `,"prev":${q(prev)},"seq":${canonicalize(seq)},"tenant":${q(event.tenant)},"type":${q(event.type)}}`
  );
}
