import { HttpAuditSink } from '../../adapters/http/audit-sink.ts';
import type { SinkCursors } from '../ports.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { AuditSinkPorts } from '../audit/sinks.ts';

/** The configured `audit.sinks` over HTTP, reading `chains` and keeping their cursors in `cursors`. */
export function auditSinkPorts(config: GatehouseConfig, cursors: SinkCursors, chains: AuditSinkPorts['chains']): AuditSinkPorts {
  return {
    cursors,
    chains,
    sinks: config.audit.sinks.map((sink) => ({
      sender: (instance: string) => new HttpAuditSink({ name: sink.name, type: sink.type, url: sink.url, headers: sink.headers, instance }),
      batchSize: sink.batchSize,
      pollIntervalMs: sink.pollInterval,
      timeoutMs: sink.timeout,
      retry: { initialMs: sink.retry.initial, maxMs: sink.retry.max },
    })),
  };
}

