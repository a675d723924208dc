import type { Dispatcher } from 'undici';
import { undici } from './undici.ts';
import type { AuditSinkSender } from '../../src/ports.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { GatewayError, isGatewayError } from '../../src/errors.ts';
import { otlpLogsRequest } from './otlp-logs.ts';

export interface HttpAuditSinkOptions {
  name: string;
  /** `http`: `{ service, instance, records }` POSTed to `url`. `otlp`: OTLP/HTTP JSON logs POSTed to `<url>/v1/logs`. */
  type: 'http' | 'otlp';
  url: string;
  /** Sent with every request (auth); never logged, never put in an error. */
  headers: Record<string, string>;
  /** This process (the gateway replica's id): which forwarder sent a batch. */
  instance: string;
  /** Where connections come from: the SSRF guard's dispatcher in Gatehouse (undici's global one otherwise). */
  dispatcher?: Dispatcher;
}

/** Where an OTLP/HTTP exporter sends logs, given the collector's base URL (or the full logs URL). */
export const otlpLogsUrl = (url: string): string => (/\/v1\/logs\/?$/.test(url) ? url : `${url.replace(/\/+$/, '')}/v1/logs`);

/**
 * An audit sink over HTTP: one POST per batch, accepted on any 2xx. Everything else (a refused or hanging
 * connection, a 4xx or 5xx) rejects, and the forwarder sends the batch again later: an audit record is never
 * dropped for a receiver's mistake, and the logs say what the receiver answered.
 */
export class HttpAuditSink implements AuditSinkSender {
  readonly name: string;
  private readonly url: string;
  /** How errors name the receiver: its origin, since a path or query may carry a token. */
  private readonly target: string;

  constructor(private readonly options: HttpAuditSinkOptions) {
    this.name = options.name;
    this.url = options.type === 'otlp' ? otlpLogsUrl(options.url) : options.url;
    this.target = new URL(this.url).origin;
  }

  async send(records: readonly AuditRecord[], signal: AbortSignal): Promise<void> {
    const { type, instance } = this.options;
    const body = JSON.stringify(type === 'otlp' ? otlpLogsRequest(records, instance) : { service: 'gatehouse', instance, records });
    let status: number;
    try {
      const response = await undici().request(this.url, { method: 'POST', headers: { ...this.options.headers, 'content-type': 'application/json' }, body, signal, ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}) });
      await response.body.dump();
      status = response.statusCode;
    } catch (err) {
      const reason = signal.aborted ? 'no answer in time' : isGatewayError(err, 'GH_ERR_OUTBOUND_DENIED') ? err.message : ((err as { code?: string }).code ?? (err as Error).name);
      throw this.failure(`could not deliver ${records.length} audit records to ${this.target}: ${reason}`, err);
    }
    if (status < 200 || status >= 300) throw this.failure(`${this.target} answered HTTP ${status} to ${records.length} audit records`);
  }

  private failure(message: string, cause?: unknown): GatewayError {
    return new GatewayError('GH_ERR_AUDIT_SINK_FAILED', `audit sink ${this.name}: ${message}`, { data: { sink: this.name, target: this.target }, ...(cause ? { cause } : {}) });
  }
}
