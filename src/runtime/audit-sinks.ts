import { HttpAuditSink } from '../../adapters/http/audit-sink.ts';
import type { SinkCursors } from '../ports.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { AuditSinkPorts } from '../audit/sinks.ts';
import { RecentRecords } from '../audit/recent-records.ts';
import { outboundGuardFor } from './outbound.ts';

/**
 * The records the chain writer just appended, kept for the sinks (a few batches of the largest sink's), when any
 * sink is configured: pass `appended` to the ChainWriter and the result to `auditSinkPorts`.
 */
export function recentRecordsFor(config: GatehouseConfig): RecentRecords | undefined {
  const sinks = config.audit.sinks;
  return sinks.length > 0 ? new RecentRecords(4 * Math.max(...sinks.map((s) => s.batchSize))) : undefined;
}

/** The configured `audit.sinks` over HTTP, reading `recent`, else `chains`, and keeping their cursors in `cursors`. */
export function auditSinkPorts(config: GatehouseConfig, cursors: SinkCursors, chains: AuditSinkPorts['chains'], recent: RecentRecords | undefined): AuditSinkPorts {
  const guard = outboundGuardFor(config);
  return {
    cursors,
    chains,
    ...(recent ? { recent } : {}),
    sinks: config.audit.sinks.map((sink) => ({
      sender: (instance: string) => new HttpAuditSink({ name: sink.name, type: sink.type, url: sink.url, headers: sink.headers, instance, dispatcher: guard.dispatcher() }),
      batchSize: sink.batchSize,
      pollIntervalMs: sink.pollInterval,
      timeoutMs: sink.timeout,
      retry: { initialMs: sink.retry.initial, maxMs: sink.retry.max },
    })),
  };
}


/** The lowest seq of a tenant's chain every configured sink has delivered: retention removes nothing after it. */
export function deliveredBySinks(config: GatehouseConfig, cursors: SinkCursors | undefined): ((tenant: string) => Promise<number>) | undefined {
  const { sinks } = config.audit;
  return cursors ? async (tenant) => Math.min(...(await Promise.all(sinks.map((sink) => cursors.get(sink.name, tenant))))) : undefined;
}
