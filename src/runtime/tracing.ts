import { ProxyTracer, type Tracer } from '@opentelemetry/api';
import type { GatehouseConfig } from '../config/schema.ts';
import { noTracing, type Tracing } from '../ports.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../protocol/redact-url.ts';
import { SERVER_INFO } from '../gateway/era.ts';
import { GatewayError } from '../errors.ts';
import { outboundGuardFor } from './outbound.ts';

/**
 * Tracing as `telemetry.otlp` says: without it `noTracing`, and the SDK is never loaded; with it, the SDK is imported
 * in the background (so that building a gateway stays synchronous) and spans start once `ready()` resolves, which
 * the gateway awaits before it serves. The headers are never logged. The collector is behind the SSRF guard.
 */
export function openTracing(config: Pick<GatehouseConfig, 'telemetry' | 'listen' | 'outbound'>, serviceName: string, instanceId: string, log: Logger): Tracing {
  const otlp = config.telemetry.otlp;
  if (!otlp) return noTracing;
  let loaded: Tracing | undefined;
  const loading = import('../../adapters/otel/otlp-tracing.ts').then(({ startOtlpTracing }) => {
    // The collector is reached through the SSRF guard like every other outbound request.
    const guard = outboundGuardFor(config);
    loaded = startOtlpTracing({ endpoint: otlp.endpoint, headers: otlp.headers, serviceName, instanceId, serviceVersion: SERVER_INFO.version, log, agent: (protocol) => guard.nodeAgent(protocol) });
    log.info('tracing: spans go to an OTLP/HTTP collector', { endpoint: redactUrl(otlp.endpoint), service: serviceName });
  }, (err: unknown) => {
    throw new GatewayError('GH_ERR_INTERNAL', `telemetry.otlp is set, but the OpenTelemetry SDK could not be loaded: ${(err as Error)?.message ?? err}`, { cause: err });
  });
  const tracer: Tracer = new ProxyTracer({ getDelegateTracer: () => loaded?.tracer }, 'gatehouse');
  return {
    tracer,
    enabled: true,
    ready: () => loading,
    close: async () => {
      await loading.catch(() => undefined);
      await loaded?.close();
    },
  };
}
