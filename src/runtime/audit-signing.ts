import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GatehouseConfig } from '../config/schema.ts';
import { dataDirSecret } from '../approvals/signing.ts';
import { CheckpointKey } from '../audit/checkpoint.ts';
import type { CheckpointOptions } from '../audit/chain-writer.ts';

const KEY_NAME = 'audit-signing';

/** Where the data dir keeps the checkpoint key: a 32-byte Ed25519 seed as hex, mode 0600. */
export function auditKeyPath(dataDir: string): string {
  return join(dataDir, 'secrets', `${KEY_NAME}.key`);
}

/**
 * The checkpoint key: `audit.signingKey`, else the data dir's key file, created on first use (embedded mode only;
 * replicas would each create their own). Undefined when there is none and `create` is false, or in distributed mode
 * without `audit.signingKey`.
 */
export async function auditSigningKey(config: Pick<GatehouseConfig, 'audit' | 'dataDir' | 'mode'>, create: boolean): Promise<CheckpointKey | undefined> {
  if (config.audit.signingKey) return CheckpointKey.parse(config.audit.signingKey);
  if (config.mode === 'distributed') return undefined;
  if (create) return CheckpointKey.parse(await dataDirSecret(config.dataDir, KEY_NAME));
  try {
    return CheckpointKey.parse(await readFile(auditKeyPath(config.dataDir), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** What a chain writer needs to write checkpoints under this config, or undefined when it writes none. */
export function checkpointOptions(config: Pick<GatehouseConfig, 'audit' | 'dataDir' | 'mode'>, options: { atClose: boolean; now?: () => number }): CheckpointOptions | undefined {
  if (config.mode === 'distributed' && !config.audit.signingKey) return undefined;
  return {
    every: config.audit.checkpointEvery,
    key: async () => (await auditSigningKey(config, true))!,
    atClose: options.atClose,
    now: options.now ?? Date.now,
  };
}
