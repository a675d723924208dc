import { PrometheusMetrics, type MetricSources } from '../../adapters/prometheus/prometheus-metrics.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { ApprovalStore, Metrics, Upstream } from '../ports.ts';
import type { MetricsScrape } from '../api/metrics-route.ts';
import type { Gateway } from './gateway.ts';

/** The metrics a gateway reports to, and serves at /metrics when they can be scraped. */
export type GatewayMetrics = Metrics & { scrape?: MetricsScrape };

/** What every mode's gauges are read from at scrape time; the gateway only once it exists. */
export interface GaugeSources {
  approvals: Pick<ApprovalStore, 'list'>;
  upstreams: ReadonlyMap<string, Upstream>;
  gateway(): Gateway | undefined;
}

/**
 * Prometheus metrics when `metrics.enabled` (the default), else none: nothing on the call path measures. `more`
 * adds what only distributed mode has (its links, the dead-letter queue).
 */
export function createMetrics(config: GatehouseConfig, common: GaugeSources, more: Pick<MetricSources, 'links' | 'deadLetters'> = {}): PrometheusMetrics | undefined {
  if (!config.metrics.enabled) return undefined;
  const sources: MetricSources = {
    approvalsPending: async () => (await common.approvals.list({ state: 'pending' })).length,
    auditBacklog: () => common.gateway()?.audit.backlog ?? 0,
    auditAppended: () => common.gateway()?.audit.storedEvents ?? 0,
    sinkLag: () => common.gateway()?.sinkLag() ?? [],
    upstreams: () => common.upstreams.values(),
    ...more,
  };
  return new PrometheusMetrics({ maxTools: config.metrics.maxTools, sources });
}
