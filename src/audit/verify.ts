import { GENESIS, type AuditRecord, type ChainHead } from '../protocol/audit-record.ts';
import { hashRecord } from '../protocol/audit-chain.ts';
import { isGatewayError, type ErrorCode } from '../errors.ts';
import type { AuditStore, TornTail } from '../ports.ts';
import { CHECKPOINT_TYPE, checkpointProblem, type CheckpointPublicKey } from './checkpoint.ts';

/** What retention records when it removes segments (adapters/file/audit-store.ts): its `data.anchor` names the anchor. */
export const PRUNED_TYPE = 'audit.pruned';

export interface VerifyReport {
  tenant: string;
  ok: boolean;
  /** Records that verify, from seq 1 on. */
  records: number;
  /** Why it is not ok: GH_ERR_AUDIT_BROKEN (a link does not verify) or GH_ERR_AUDIT_TRUNCATED (shorter than its head). */
  code?: Extract<ErrorCode, 'GH_ERR_AUDIT_BROKEN' | 'GH_ERR_AUDIT_TRUNCATED'>;
  /** The first record that does not verify, by sequence number (or the line, when it is not even JSON). */
  brokenAt?: { seq?: number; line?: number; reason: string };
  /** The chain does not reach, or does not pass through, its recorded head: its newest records were removed. */
  cut?: { reason: string };
  /** The newest record that verifies. */
  head?: ChainHead;
  /** The head kept apart from the chain (the store's, or an export's head line), when there is one. */
  recordedHead?: ChainHead;
  /** Bytes after the last whole record: a write cut short, which the store repairs; not an edit. */
  tornTail?: TornTail;
  /** The signed checkpoints met (all of them verified when the report is ok and `checked`). */
  checkpoints: CheckpointSummary;
  /** Retention removed the records up to this one, a signed checkpoint the kept records link to. */
  anchor?: ChainHead;
}

export interface CheckpointSummary {
  count: number;
  /** Whether their signatures were checked: false when there was no key to check them with. */
  checked: boolean;
  /** The newest checkpoint that verifies: the record it covers, when it was signed, by which key. */
  last?: { seq: number; hash: string; at: number; keyId: string };
  /** Records after the record the newest checkpoint covers (the checkpoint included): not yet covered by a signature. */
  uncovered: number;
}

export interface VerifyOptions {
  recordedHead?: ChainHead;
  tornTail?: TornTail;
  /** The key checkpoints must be signed by; without it they are counted, not checked. */
  checkpointKey?: CheckpointPublicKey;
  /**
   * The record retention anchored the chain on (see `AuditStore.anchor`): the chain is verified from the record after
   * it. The anchor itself must recompute to its hash and be a checkpoint signed by the key, and a kept `audit.pruned`
   * record must name it (else anyone who can delete files could drop a chain's oldest records and name a real
   * checkpoint as the anchor). Records up to it that are still there (a retention cut short) are skipped.
   */
  anchor?: AuditRecord;
}

/**
 * Recomputes a chain from its first record and stops at the first broken link; then checks that it reaches its
 * recorded head, when there is one, and passes through it.
 */
export async function verifyChain(tenant: string, records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>, options: VerifyOptions = {}): Promise<VerifyReport> {
  const { recordedHead, tornTail, checkpointKey, anchor } = options;
  const checkpoints: CheckpointSummary = { count: 0, checked: checkpointKey !== undefined, uncovered: 0 };
  const extra = { ...(recordedHead ? { recordedHead } : {}), ...(tornTail ? { tornTail } : {}), checkpoints, ...(anchor ? { anchor: { seq: anchor.seq, hash: anchor.hash } } : {}) };
  let expectedSeq = GENESIS.seq + 1;
  let prev = GENESIS.hash;
  let count = 0;
  let passedHead = false;
  /** Whether a kept `audit.pruned` names the anchor; and the first record up to the anchor still there, if any. */
  let vouched = false;
  let firstBeforeAnchor: number | undefined;
  if (anchor) {
    const problem = anchorProblem(tenant, anchor, checkpointKey);
    if (problem) return broken(tenant, 0, { seq: anchor.seq, reason: `the retention anchor ${problem}` }, extra);
    checkpoints.count++;
    if (checkpointKey) {
      const data = anchor.data as { seq: number; hash: string; at: number; keyId: string };
      checkpoints.last = { seq: data.seq, hash: data.hash, at: data.at, keyId: data.keyId };
    }
    expectedSeq = anchor.seq + 1;
    prev = anchor.hash;
    // A head at or before the anchor names a record retention removed: the chain is past it, and the anchor is signed.
    if (recordedHead && recordedHead.seq <= anchor.seq) passedHead = recordedHead.seq < anchor.seq || recordedHead.hash === anchor.hash;
    checkpoints.uncovered = 1;
  }
  try {
    for await (const record of records) {
      if (anchor && record.seq <= anchor.seq) {
        firstBeforeAnchor ??= record.seq;
        continue;
      }
      const { hash, ...rest } = record;
      if (record.seq !== expectedSeq) {
        return broken(tenant, count, { seq: expectedSeq, reason: `expected seq ${expectedSeq}, found ${record.seq}` }, extra);
      }
      if (record.prev !== prev) return broken(tenant, count, { seq: record.seq, reason: 'prev does not match the previous hash' }, extra);
      if (record.tenant !== tenant) return broken(tenant, count, { seq: record.seq, reason: `record belongs to tenant ${record.tenant}` }, extra);
      if (hashRecord(rest) !== hash) return broken(tenant, count, { seq: record.seq, reason: 'hash does not match the record' }, extra);
      if (recordedHead && record.seq === recordedHead.seq) {
        if (hash !== recordedHead.hash) {
          return cut(tenant, count, { seq: expectedSeq - 1, hash: prev }, `its record of seq ${record.seq} is not the one its head records: the chain was cut and written on from there`, extra);
        }
        passedHead = true;
      }
      if (record.type === CHECKPOINT_TYPE) {
        checkpoints.count++;
        if (checkpointKey) {
          const problem = checkpointProblem(record, checkpointKey);
          if (problem) return broken(tenant, count, { seq: record.seq, reason: problem }, extra);
          const data = record.data as { seq: number; hash: string; at: number; keyId: string };
          checkpoints.last = { seq: data.seq, hash: data.hash, at: data.at, keyId: data.keyId };
          checkpoints.uncovered = 0;
        }
      }
      if (anchor && record.type === PRUNED_TYPE) {
        const named = (record.data as { anchor?: Partial<ChainHead> }).anchor;
        vouched ||= named?.seq === anchor.seq && named.hash === anchor.hash;
      }
      checkpoints.uncovered++;
      prev = hash;
      expectedSeq++;
      count++;
    }
  } catch (err) {
    if (isGatewayError(err, 'GH_ERR_DATA_CORRUPT')) {
      return broken(tenant, count, { seq: expectedSeq, line: err.data?.line as number | undefined, reason: err.message }, extra);
    }
    throw err;
  }
  // A chain that still starts at seq 1 lost nothing: retention wrote its anchor and was cut short before recording it.
  if (anchor && !vouched && firstBeforeAnchor !== 1) {
    return broken(tenant, count, { seq: anchor.seq + 1, reason: `no audit.pruned record names the retention anchor (seq ${anchor.seq}): the records before it were removed by something other than retention` }, extra);
  }
  const head = { seq: expectedSeq - 1, hash: prev };
  if (recordedHead && !passedHead && recordedHead.seq > GENESIS.seq) {
    return cut(tenant, count, head, `the chain ends at seq ${head.seq}, its recorded head is seq ${recordedHead.seq}: records ${head.seq + 1}…${recordedHead.seq} were removed`, extra);
  }
  return { tenant, ok: true, records: count, head, ...extra };
}

/** How often a verify that failed while retention moved the anchor is run again. */
const ANCHOR_MOVED_ATTEMPTS = 3;

/**
 * Verifies a tenant's chain in a store against the head the store keeps apart from it, noting a torn tail. A chain
 * that fails while retention moved its anchor (another process trimmed it between reading the anchor and the records)
 * is verified again.
 */
export async function verifyStore(store: Pick<AuditStore, 'read' | 'recordedHead' | 'tornTail' | 'anchor'>, tenant: string, checkpointKey?: CheckpointPublicKey): Promise<VerifyReport> {
  for (let attempt = 1; ; attempt++) {
    const report = await verifyStoreOnce(store, tenant, checkpointKey);
    if (report.ok || attempt === ANCHOR_MOVED_ATTEMPTS) return report;
    const anchor = await store.anchor?.(tenant).catch(() => undefined);
    if (anchor?.seq === report.anchor?.seq) return report;
  }
}

async function verifyStoreOnce(store: Pick<AuditStore, 'read' | 'recordedHead' | 'tornTail' | 'anchor'>, tenant: string, checkpointKey?: CheckpointPublicKey): Promise<VerifyReport> {
  let anchor: AuditRecord | undefined;
  try {
    anchor = await store.anchor?.(tenant);
  } catch (err) {
    // A garbled anchor stands for nothing: the records before the first kept one cannot be checked.
    if (!isGatewayError(err, 'GH_ERR_DATA_CORRUPT')) throw err;
    return broken(tenant, 0, { seq: 0, reason: `the retention anchor: ${err.message}` }, { checkpoints: { count: 0, checked: checkpointKey !== undefined, uncovered: 0 } });
  }
  const [recordedHead, tornTail] = await Promise.all([store.recordedHead(tenant), store.tornTail(tenant)]);
  return verifyChain(tenant, store.read(tenant), { ...(recordedHead ? { recordedHead } : {}), ...(tornTail ? { tornTail } : {}), ...(checkpointKey ? { checkpointKey } : {}), ...(anchor ? { anchor } : {}) });
}

/**
 * Why an anchor cannot stand for the records before it, or undefined: its hash must recompute from its content (so
 * its `prev`, signed, is what came before it), and it must be a checkpoint the key signed. Without a key only the
 * hash is checked, and the report says the checkpoints were not checked.
 */
function anchorProblem(tenant: string, anchor: AuditRecord, key: CheckpointPublicKey | undefined): string | undefined {
  const { hash, ...rest } = anchor;
  if (anchor.tenant !== tenant) return `belongs to tenant ${anchor.tenant}`;
  if (anchor.type !== CHECKPOINT_TYPE) return `is a ${anchor.type} record, not a signed checkpoint`;
  if (hashRecord(rest) !== hash) return 'does not hash to its recorded hash';
  return key ? checkpointProblem(anchor, key) : undefined;
}

function broken(tenant: string, records: number, brokenAt: NonNullable<VerifyReport['brokenAt']>, extra: Partial<VerifyReport> & Pick<VerifyReport, 'checkpoints'>): VerifyReport {
  return { tenant, ok: false, code: 'GH_ERR_AUDIT_BROKEN', records, brokenAt, ...extra };
}

function cut(tenant: string, records: number, head: ChainHead, reason: string, extra: Partial<VerifyReport> & Pick<VerifyReport, 'checkpoints'>): VerifyReport {
  return { tenant, ok: false, code: 'GH_ERR_AUDIT_TRUNCATED', records, head, cut: { reason }, ...extra };
}
