/** One link of a tenant's audit chain. `hash` covers every other field, `prev` is the previous record's hash. */
export interface AuditRecord {
  seq: number;
  tenant: string;
  /** Milliseconds since the epoch. */
  at: number;
  type: string;
  actor: string;
  jobId?: string;
  data: Record<string, unknown>;
  prev: string;
  hash: string;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** The head of an empty chain. */
export const GENESIS: ChainHead = { seq: 0, hash: 'sha256:' + '0'.repeat(64) };

/** An event before it is chained: what the rest of the core hands to the audit trail. */
export type AuditEvent = Omit<AuditRecord, 'seq' | 'prev' | 'hash'>;
