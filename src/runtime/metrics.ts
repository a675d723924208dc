import { PrometheusMetrics, type MetricSources } from '../../adapters/prometheus/prometheus-metrics.ts';
import type { AuditWriter } from '../audit/chain-writer.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { Metrics } from '../ports.ts';
import type { MetricsScrape } from '../api/metrics-route.ts';

/** The metrics a gateway reports to, and serves at /metrics when they can be scraped. */
export type GatewayMetrics = Metrics & { scrape?: MetricsScrape };

/** Prometheus metrics when `metrics.enabled` (the default), else none: nothing on the call path measures. */
export function createMetrics(config: GatehouseConfig, sources: MetricSources): PrometheusMetrics | undefined {
  return config.metrics.enabled ? new PrometheusMetrics({ maxTools: config.metrics.maxTools, sources }) : undefined;
}

/** Counts the audit events each batch appends, once it is stored (the audit trail itself stays unaware). */
export function countingAuditWriter(writer: AuditWriter, metrics: Metrics | undefined): AuditWriter {
  if (!metrics?.enabled) return writer;
  return {
    async write(batch) {
      await writer.write(batch);
      let events = 0;
      for (const tenantEvents of batch.values()) events += tenantEvents.length;
      metrics.auditAppended(events);
    },
    close: () => writer.close(),
  };
}
