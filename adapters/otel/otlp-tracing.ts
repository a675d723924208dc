import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Agent as HttpAgent } from 'node:http';
import type { Tracing } from '../../src/ports.ts';
import type { Logger } from '../../src/log.ts';
import { redactUrl } from '../../src/protocol/redact-url.ts';

/** A stop waits this long for the last spans to reach the collector, then goes on without them. */
export const STOP_FLUSH_MS = 2_000;
/** Lost spans are logged at most this often (a collector that is down would otherwise log every batch). */
const LOST_LOG_EVERY_MS = 60_000;

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
  /** Where lost spans are reported (never with the headers). */
  log: Logger;
  /** The connections to the collector (the SSRF guard's Node agent in Gatehouse); the SDK's own agent when not given. */
  agent?: (protocol: string) => Promise<HttpAgent>;
}

/**
 * The OpenTelemetry SDK behind the `Tracing` port: spans batched and exported as OTLP/HTTP JSON. Its own provider,
 * never the global one, so that two gateways in one process (tests) keep their spans apart. Sampling follows the
 * parent: a client that sent an unsampled traceparent gets no spans.
 */
export function startOtlpTracing(options: OtlpTracingOptions): Tracing {
  const url = options.endpoint.replace(/\/+$/, '');
  const lost = lostSpanReport(options.log, redactUrl(options.endpoint));
  const exporter = countingLosses(new OTLPTraceExporter({ url: url.endsWith('/v1/traces') ? url : `${url}/v1/traces`, headers: { ...options.headers }, ...(options.agent ? { httpAgentOptions: options.agent } : {}) }), lost);
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
    // A collector that is down or stuck must not fail or hold up the stop: its spans are lost, and said so.
    close: async () => {
      let timer: NodeJS.Timeout | undefined;
      const flushed = provider.shutdown().then(
        () => true,
        () => true,
      );
      const waited = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_FLUSH_MS)));
      const inTime = await Promise.race([flushed, waited]);
      clearTimeout(timer);
      if (!inTime) lost(undefined, new Error(`the collector did not take the last spans within ${STOP_FLUSH_MS} ms of the stop`), true);
    },
  };
}

type LostSpans = (count: number | undefined, error: Error | undefined, force?: boolean) => void;

/** Logs lost spans at warn, at most once a minute, with how many were lost since the last line. */
export function lostSpanReport(log: Logger, endpoint: string): LostSpans {
  let lostSince = 0;
  let loggedAt = -Infinity;
  return (count, error, force = false) => {
    lostSince += count ?? 0;
    const now = Date.now();
    if (!force && now - loggedAt < LOST_LOG_EVERY_MS) return;
    loggedAt = now;
    log.warn('tracing: spans lost, the collector did not take them (calls are not affected)', { endpoint, lost: lostSince, error: error?.message });
    lostSince = 0;
  };
}

/** The exporter, reporting each batch it could not deliver. */
function countingLosses(exporter: SpanExporter, lost: LostSpans): SpanExporter {
  return {
    export: (spans: ReadableSpan[], done) =>
      exporter.export(spans, (result) => {
        // ExportResultCode.SUCCESS is 0 (@opentelemetry/core, not a dependency of ours).
        if (result.code !== 0) lost(spans.length, result.error);
        done(result);
      }),
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
