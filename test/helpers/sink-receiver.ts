import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import type { AuditSinkConfig } from '../../src/config/schema.ts';

/** The header the test sinks send: the logs must never show it. */
export const SINK_SECRET = 'Bearer sink-secret-0123456789';
export const SINK_BATCH = 7;

/** A sink as the config loader leaves it, with short waits so that a test sees several retries. */
export function sinkConfig(name: string, type: AuditSinkConfig['type'], url: string): AuditSinkConfig {
  return { name, type, url, headers: { Authorization: SINK_SECRET }, batchSize: SINK_BATCH, timeout: 3_000, pollInterval: 20, retry: { initial: 20, max: 150 } };
}

/** Each seq once, in the order first delivered. */
export function firstOfEach(records: AuditRecord[]): AuditRecord[] {
  const seen = new Set<number>();
  return records.filter((r) => !seen.has(r.seq) && seen.add(r.seq));
}

/** How the receiver treats the next requests: accept, answer a status, never answer, or refuse connections. */
export type SinkMode = 'accept' | 503 | 'hang' | 'down';

export interface SinkRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
  /** Whether it was answered 2xx: only those batches count as delivered. */
  accepted: boolean;
}

export interface SinkReceiver {
  /** Where the sink posts: `http://127.0.0.1:<port>/ingest?token=…` (a path and query the logs must not show). */
  url: string;
  /** The collector's base URL, for an OTLP sink. */
  base: string;
  requests: SinkRequest[];
  /** The records of the accepted batches, in the order they were accepted, duplicates included. */
  delivered(): AuditRecord[];
  setMode(mode: SinkMode): Promise<void>;
  close(): Promise<void>;
}

/** The audit records in one request: a batch's `records`, or each OTLP log record's body. */
export function recordsOf(body: any): AuditRecord[] {
  if (Array.isArray(body.records)) return body.records;
  return body.resourceLogs.flatMap((r: any) => r.scopeLogs.flatMap((s: any) => s.logRecords.map((l: any) => JSON.parse(l.body.stringValue))));
}

/**
 * A real HTTP receiver for audit sinks on port 0, which can be made to fail: 503s, hanging requests, and
 * refused connections (the server closed, then listening again on the same port).
 */
export async function sinkReceiver(): Promise<SinkReceiver> {
  const requests: SinkRequest[] = [];
  const hanging = new Set<ServerResponse>();
  let mode: SinkMode = 'accept';
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      const request: SinkRequest = { path: req.url ?? '', headers: req.headers, body: JSON.parse(text), accepted: false };
      requests.push(request);
      if (mode === 'hang') return void hanging.add(res);
      request.accepted = mode === 'accept';
      res.writeHead(mode === 'accept' ? 200 : (mode as number)).end();
    });
  });
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const stop = () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections());
  return {
    url: `http://127.0.0.1:${port}/ingest?token=path-secret`,
    base: `http://127.0.0.1:${port}`,
    requests,
    delivered: () => requests.filter((r) => r.accepted).flatMap((r) => recordsOf(r.body)),
    setMode: async (next) => {
      for (const res of hanging) res.destroy();
      hanging.clear();
      if (mode === 'down' && next !== 'down') await listen(port);
      if (next === 'down' && mode !== 'down') await stop();
      mode = next;
    },
    close: async () => {
      for (const res of hanging) res.destroy();
      if (mode !== 'down') await stop();
    },
  };
}
