import { GENESIS, type AuditRecord } from './record.ts';
import { hashRecord } from './chain.ts';
import { isGatewayError } from '../errors.ts';

export interface VerifyReport {
  tenant: string;
  ok: boolean;
  records: number;
  /** The first record that does not verify, by sequence number (or the line, when it is not even JSON). */
  brokenAt?: { seq?: number; line?: number; reason: string };
  head?: { seq: number; hash: string };
}

/** Recomputes a chain from its first record and stops at the first broken link. */
export async function verifyChain(tenant: string, records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>): Promise<VerifyReport> {
  let expectedSeq = GENESIS.seq + 1;
  let prev = GENESIS.hash;
  let count = 0;
  try {
    for await (const record of records) {
      const { hash, ...rest } = record;
      if (record.seq !== expectedSeq) {
        return broken(tenant, count, { seq: expectedSeq, reason: `expected seq ${expectedSeq}, found ${record.seq}` });
      }
      if (record.prev !== prev) return broken(tenant, count, { seq: record.seq, reason: 'prev does not match the previous hash' });
      if (record.tenant !== tenant) return broken(tenant, count, { seq: record.seq, reason: `record belongs to tenant ${record.tenant}` });
      if (hashRecord(rest) !== hash) return broken(tenant, count, { seq: record.seq, reason: 'hash does not match the record' });
      prev = hash;
      expectedSeq++;
      count++;
    }
  } catch (err) {
    if (isGatewayError(err, 'GH_ERR_DATA_CORRUPT')) {
      return broken(tenant, count, { seq: expectedSeq, line: err.data?.line as number | undefined, reason: err.message });
    }
    throw err;
  }
  return { tenant, ok: true, records: count, head: { seq: expectedSeq - 1, hash: prev } };
}

function broken(tenant: string, records: number, brokenAt: NonNullable<VerifyReport['brokenAt']>): VerifyReport {
  return { tenant, ok: false, records, brokenAt };
}
