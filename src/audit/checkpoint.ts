import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalize } from '../protocol/jcs.ts';
import { sha256Hex } from '../protocol/digest.ts';
import type { AuditEvent, AuditRecord, ChainHead } from '../protocol/audit-record.ts';

/**
 * A signed checkpoint: a record in the chain, `audit.checkpoint`, whose Ed25519 signature covers the record just
 * before it (tenant, seq, hash, time). Being a record, it is chained, exported and verified with the rest; being
 * signed, it proves the chain reached that record, which a head line or head file (rewritable by whoever can
 * rewrite the chain) cannot.
 */
export const CHECKPOINT_TYPE = 'audit.checkpoint';

/** Domain separation: a checkpoint signature is never valid for anything else the key could sign. */
const DOMAIN_PREFIX = 'gatehouse.audit.checkpoint.v1\n';

/** The DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows it. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** The DER prefix of an SPKI Ed25519 public key; the 32 raw bytes follow it. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface CheckpointData {
  /** The record covered: the one right before the checkpoint. */
  seq: number;
  hash: string;
  /** When it was signed (ms since the epoch). */
  at: number;
  keyId: string;
  /** base64url Ed25519 signature over the canonical JSON of { tenant, seq, hash, at }. */
  signature: string;
}

/** The public half of the checkpoint key, as `gatehouse audit pubkey` prints it and verifiers take it. */
export class CheckpointPublicKey {
  /** The raw 32-byte public key, base64. */
  readonly base64: string;
  readonly pem: string;
  /** The first 16 hex digits of the sha256 of the raw public key. */
  readonly keyId: string;

  constructor(readonly key: KeyObject) {
    const raw = key.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
    this.base64 = raw.toString('base64');
    this.pem = key.export({ format: 'pem', type: 'spki' }).toString();
    this.keyId = sha256Hex(raw).slice(0, 16);
  }

  /** A PEM public key, or the base64 of the raw 32 bytes. */
  static parse(text: string): CheckpointPublicKey {
    // What `audit pubkey` prints: a comment line, then the PEM.
    const pemBlock = /-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/.exec(text)?.[0];
    if (pemBlock) {
      const key = createPublicKey(pemBlock.includes('PRIVATE KEY') ? createPrivateKey(pemBlock) : pemBlock);
      return new CheckpointPublicKey(ed25519(key));
    }
    const raw = Buffer.from(text.trim(), 'base64');
    if (raw.length !== 32) throw new Error('an audit public key is a PEM or the base64 of 32 bytes');
    return new CheckpointPublicKey(createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' }));
  }
}

/** The key checkpoints are signed with. */
export class CheckpointKey {
  readonly publicKey: CheckpointPublicKey;

  private constructor(private readonly privateKey: KeyObject) {
    this.publicKey = new CheckpointPublicKey(createPublicKey(privateKey));
  }

  /**
   * `audit.signingKey` or the data dir's key file: a PEM private key, or a 32-byte seed as base64 or as 64 hex
   * digits (what the data dir's key file holds).
   */
  static parse(text: string): CheckpointKey {
    const trimmed = text.trim();
    if (trimmed.startsWith('-----BEGIN')) return new CheckpointKey(ed25519(createPrivateKey(trimmed)));
    const seed = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
    if (seed.length !== 32) throw new Error('the audit signing key is a PEM Ed25519 private key, or a 32-byte seed in base64 or hex');
    return new CheckpointKey(createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' }));
  }

  /** The checkpoint event covering `head`, to be chained right after it. */
  checkpoint(tenant: string, head: ChainHead, at: number): AuditEvent {
    const signature = sign(null, Buffer.from(signedText(tenant, head.seq, head.hash, at)), this.privateKey).toString('base64url');
    const data: CheckpointData = { seq: head.seq, hash: head.hash, at, keyId: this.publicKey.keyId, signature };
    return { tenant, at, type: CHECKPOINT_TYPE, actor: 'gatehouse', data: data as unknown as Record<string, unknown> };
  }
}

/**
 * Why a checkpoint record does not hold, or undefined when it does: it must cover the record right before it
 * (`prev` is that record's hash, already checked by the chain), be signed by `key`, and the signature must verify.
 */
export function checkpointProblem(record: AuditRecord, key: CheckpointPublicKey): string | undefined {
  const data = record.data as Partial<CheckpointData>;
  if (typeof data.seq !== 'number' || typeof data.hash !== 'string' || typeof data.at !== 'number' || typeof data.signature !== 'string') {
    return 'the checkpoint lacks its seq, hash, at or signature';
  }
  if (data.seq !== record.seq - 1 || data.hash !== record.prev) {
    return `the checkpoint names seq ${data.seq} (${data.hash}), not the record before it (seq ${record.seq - 1}, ${record.prev})`;
  }
  if (data.keyId !== key.keyId) return `the checkpoint is signed by key ${String(data.keyId)}, not by ${key.keyId}`;
  const ok = verify(null, Buffer.from(signedText(record.tenant, data.seq, data.hash, data.at)), key.key, Buffer.from(data.signature, 'base64url'));
  return ok ? undefined : 'the checkpoint signature does not verify';
}

function signedText(tenant: string, seq: number, hash: string, at: number): string {
  return DOMAIN_PREFIX + canonicalize({ tenant, seq, hash, at });
}

function ed25519(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the audit signing key must be Ed25519, not ${key.asymmetricKeyType}`);
  return key;
}
