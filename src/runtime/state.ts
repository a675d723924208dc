/**
 * The state a command (approvals, audit, policy replay) works on, wherever the config keeps it: the data dir in
 * embedded mode, Redis in distributed mode. Either way it works while gateways run in other processes.
 */
import type { AuditStore, JobLedger, PinStore } from '../ports.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { AuditTrail } from '../audit/trail.ts';
import { openAuditStore, openDataDir, openDataDirDeadLetters, openDataDirPins } from './embedded.ts';
import { checkpointOptions } from './audit-signing.ts';

/** Loaded only in distributed mode: embedded mode never pays for the NATS, Redis and protobuf modules. */
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
