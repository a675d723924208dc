import { PrometheusMetrics, type MetricSources } from '../../adapters/prometheus/prometheus-metrics.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { Metrics } from '../ports.ts';
import type { MetricsScrape } from '../api/metrics-route.ts';

/** The metrics a gateway reports to, and serves at /metrics when they can be scraped. */
export type GatewayMetrics = Metrics & { scrape?: MetricsScrape };

/** Prometheus metrics when `metrics.enabled` (the default), else none: nothing on the call path measures. */
export function createMetrics(config: GatehouseConfig, sources: MetricSources): PrometheusMetrics | undefined {
  return config.metrics.enabled ? new PrometheusMetrics({ maxTools: config.metrics.maxTools, sources }) : undefined;
}
