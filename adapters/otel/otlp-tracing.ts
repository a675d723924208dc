import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Tracing } from '../../src/ports.ts';

export interface OtlpTracingOptions {
  /** The collector's OTLP/HTTP base URL (`http://collector:4318`); spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  /** Sent with every export (an API key, for instance): never logged. */
  headers: Readonly<Record<string, string>>;
  /** `service.name` of the resource: `gatehouse`, or `gatehouse-worker` for a worker. */
  serviceName: string;
  /** `service.instance.id`: the replica's or worker's id. */
  instanceId: string;
  serviceVersion?: string;
}

/**
 * The OpenTelemetry SDK behind the `Tracing` port: spans batched and exported as OTLP/HTTP JSON. Its own provider,
 * never the global one, so that two gateways in one process (tests) keep their spans apart. Sampling follows the
 * parent: a client that sent an unsampled traceparent gets no spans.
 */
export function startOtlpTracing(options: OtlpTracingOptions): Tracing {
  const url = options.endpoint.replace(/\/+$/, '');
  const exporter = new OTLPTraceExporter({ url: url.endsWith('/v1/traces') ? url : `${url}/v1/traces`, headers: { ...options.headers } });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName,
      'service.instance.id': options.instanceId,
      ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}),
    }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  return {
    tracer: provider.getTracer('gatehouse', options.serviceVersion),
    enabled: true,
    ready: async () => undefined,
    close: () => provider.shutdown(),
  };
}
