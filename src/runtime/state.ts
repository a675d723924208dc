/**
 * The state a command (approvals, audit, policy replay) works on, wherever the config keeps it: the data dir in
 * embedded mode, Redis in distributed mode. Either way it works while gateways run in other processes.
 */
import type { AuditStore } from '../ports.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { ApprovalService } from '../approvals/service.ts';
import { openAuditStore, openDataDir } from './embedded.ts';
import { openRedisApprovals, openRedisAudit } from './distributed.ts';

export function openApprovalState(config: GatehouseConfig): Promise<{ approvals: ApprovalService; close(): Promise<void> }> {
  return config.mode === 'distributed' ? openRedisApprovals(config) : Promise.resolve(openDataDir(config.dataDir, config.approvals.ttl));
}

export function openAuditState(config: GatehouseConfig): Promise<AuditStore> {
  return config.mode === 'distributed' ? openRedisAudit(config) : Promise.resolve(openAuditStore(config.dataDir));
}
