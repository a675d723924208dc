/**
 * The state a command (approvals, audit, policy replay) works on, wherever the config keeps it: the data dir in
 * embedded mode, Redis in distributed mode. Either way it works while gateways run in other processes.
 */
import type { AuditStore, JobLedger, PinStore } from '../ports.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import { spillToDataDir } from '../../adapters/file/audit-spill.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { ApprovalService } from '../approvals/service.ts';
import { AuditTrail } from '../audit/trail.ts';
import { ChainWriter, type CheckpointOptions } from '../audit/chain-writer.ts';
import { FilePinStore } from '../../adapters/file/pin-store.ts';
import { checkpointOptions } from './audit-signing.ts';

/**
 * Loaded only in distributed mode: embedded mode never pays for the NATS, Redis and protobuf modules. The data dir's
 * state below imports its stores alone, never the gateway (embedded.ts), so a state command starts quickly.
 */
const distributed = () => import('./distributed.ts');

export function openApprovalState(config: GatehouseConfig): Promise<{ approvals: ApprovalService; close(): Promise<void> }> {
  return config.mode === 'distributed' ? distributed().then((d) => d.openRedisApprovals(config)) : Promise.resolve(openDataDir(config.dataDir, config.approvals.ttl, checkpointOptions(config, { atClose: false })));
}

export function openAuditState(config: GatehouseConfig): Promise<AuditStore> {
  return config.mode === 'distributed' ? distributed().then((d) => d.openRedisAudit(config)) : Promise.resolve(openAuditStore(config.dataDir));
}

/** The dead-letter queue (`gatehouse dlq`), with the audit trail its changes are recorded in. */
export function openDeadLetterState(config: GatehouseConfig): Promise<{ ledger: JobLedger; audit: AuditTrail; close(): Promise<void> }> {
  return config.mode === 'distributed' ? distributed().then((d) => d.openRedisDeadLetters(config)) : Promise.resolve(openDataDirDeadLetters(config.dataDir, checkpointOptions(config, { atClose: false })));
}

/** The pinned tool definitions (`gatehouse tools`), with the audit trail decisions on them are recorded in. */
export function openPinState(config: GatehouseConfig): Promise<{ pins: PinStore; audit: AuditTrail; close(): Promise<void> }> {
  return config.mode === 'distributed' ? distributed().then((d) => d.openRedisPins(config)) : Promise.resolve(openDataDirPins(config.dataDir, checkpointOptions(config, { atClose: false })));
}

/** State for commands that read or change the data dir while a gateway may run in another process. */
export function openDataDir(dataDir: string, ttlMs: number, checkpoints?: CheckpointOptions): { approvals: ApprovalService; close(): Promise<void> } {
  const approvalStore = new FileApprovalStore(dataDir);
  const audit = dataDirTrail(dataDir, checkpoints);
  return {
    approvals: new ApprovalService(approvalStore, audit, systemClock, ttlMs),
    close: async () => {
      await audit.close();
      await approvalStore.close();
    },
  };
}

/** The audit chains of a data dir, for the commands that read them. */
export function openAuditStore(dataDir: string): AuditStore {
  return new FileAuditStore(dataDir);
}

/** The dead-letter queue of a data dir, and its audit trail, for `gatehouse dlq` while a gateway may run. */
export function openDataDirDeadLetters(dataDir: string, checkpoints?: CheckpointOptions): { ledger: JobLedger; audit: AuditTrail; close(): Promise<void> } {
  const ledger = new FileJobLedger(dataDir);
  const audit = dataDirTrail(dataDir, checkpoints);
  return {
    ledger,
    audit,
    close: async () => {
      await audit.close();
      await ledger.close();
    },
  };
}

/** The pinned tool definitions of a data dir, and its audit trail, for `gatehouse tools` while a gateway may run. */
export function openDataDirPins(dataDir: string, checkpoints?: CheckpointOptions): { pins: PinStore; audit: AuditTrail; close(): Promise<void> } {
  const audit = dataDirTrail(dataDir, checkpoints);
  return { pins: new FilePinStore(dataDir), audit, close: () => audit.close() };
}

/** A data dir's audit trail for a command: every record written at once (no timer), unwritten ones spilled there. */
function dataDirTrail(dataDir: string, checkpoints: CheckpointOptions | undefined): AuditTrail {
  return new AuditTrail(new ChainWriter(new FileAuditStore(dataDir), checkpoints), { flushIntervalMs: 0, spill: spillToDataDir(dataDir) });
}
