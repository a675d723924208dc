import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { auditOf, connectHttp, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';
import { firstOfEach, SINK_BATCH as BATCH, SINK_SECRET as SECRET, sinkConfig, sinkReceiver, type SinkReceiver } from '../helpers/sink-receiver.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

// The audit sinks of an embedded gateway, in-process, with real HTTP receivers on port 0 that fail on demand.
describe('audit sinks (embedded)', () => {
  let siem: SinkReceiver;
  let otel: SinkReceiver;
  let h: Harness;
  let client: Client;
  /** The first run's data dir, which the restarted gateway takes over (the harness would make a new one). */
  let dataDir: string;
  const log = recordingLogger();
  const start = (dataDir?: string) =>
    startHarness({ ...(dataDir ? { dataDir } : {}), audit: { sinks: [sinkConfig('siem', 'http', siem.url), sinkConfig('otel', 'otlp', otel.base)] } }, { log });
  const echo = async (text: string) => {
    const result = (await client.callTool({ name: 'fx__echo', arguments: { text } })) as { isError?: boolean };
    expect(result.isError).toBeFalsy();
  };
  /**
   * Waits until the chain holds `succeeded` finished calls (a call's last records may land after its result) and
   * `receiver` was delivered every record of it, and returns the chain.
   */
  const caughtUp = async (receiver: SinkReceiver, succeeded: number) => {
    let chain: AuditRecord[] = [];
    await waitFor(async () => {
      chain = await auditOf(dataDir, 'default');
      return chain.filter((r) => r.type === 'job.succeeded').length === succeeded && firstOfEach(receiver.delivered()).length === chain.length;
    }, 'the sink to catch up');
    return chain;
  };
  const metrics = async () => (await fetch(h.url.replace(/\/mcp$/, '/metrics'))).text();

  beforeAll(async () => {
    [siem, otel] = await Promise.all([sinkReceiver(), sinkReceiver()]);
    h = await start();
    dataDir = h.dataDir;
    client = await connectHttp(h.url);
  });

  afterAll(async () => {
    await client?.close();
    await h?.close();
    await Promise.all([siem?.close(), otel?.close()]);
  });

  it('delivers every record in chain order, nothing missing, in batches, with the configured headers', async () => {
    for (let i = 0; i < 12; i++) await echo(`in-order-${i}`);
    const chain = await caughtUp(siem, 12);
    // Nothing dropped, reordered or sent twice: the accepted batches, end to end, are the chain.
    expect(siem.delivered()).toEqual(chain);
    expect(siem.requests.every((r) => r.body.records.length <= BATCH)).toBe(true);
    expect(siem.requests[0].headers.authorization).toBe(SECRET);
    expect(siem.requests[0].body).toMatchObject({ service: 'gatehouse', instance: h.gateway.nodeId });
    expect(chain.filter((r) => r.type === 'job.succeeded')).toHaveLength(12);
  });

  it('OTLP: each record is a log record of a logs export the receiver decodes, with the record whole as its body', async () => {
    const chain = await caughtUp(otel, 12);
    expect(otel.requests.every((r) => r.path === '/v1/logs' && r.headers['content-type'] === 'application/json' && r.headers.authorization === SECRET)).toBe(true);
    const resourceLogs = otel.requests[0].body.resourceLogs;
    const attrs = (list: { key: string; value: Record<string, string> }[]) => Object.fromEntries(list.map((a) => [a.key, Object.values(a.value)[0]]));
    expect(attrs(resourceLogs[0].resource.attributes)).toEqual({ 'service.name': 'gatehouse', 'service.instance.id': h.gateway.nodeId });
    const logRecords = otel.requests.flatMap((r) => r.body.resourceLogs[0].scopeLogs[0].logRecords);
    expect(logRecords.map((l: any) => JSON.parse(l.body.stringValue))).toEqual(chain);
    const decided = logRecords.find((l: any) => l.eventName === 'job.decided');
    const record = chain.find((r) => r.type === 'job.decided')!;
    expect(decided).toMatchObject({ timeUnixNano: `${record.at}000000`, severityText: 'INFO' });
    expect(attrs(decided.attributes)).toMatchObject({
      'gatehouse.tenant': 'default',
      'gatehouse.audit.seq': String(record.seq),
      'gatehouse.audit.hash': record.hash,
      'gatehouse.audit.type': 'job.decided',
      'gatehouse.job.id': record.jobId,
      'gatehouse.actor': record.actor,
      'gatehouse.decision': 'allow',
    });
    expect(attrs(logRecords.find((l: any) => l.eventName === 'job.submitted').attributes)).toMatchObject({ 'gen_ai.tool.name': 'fx__echo' });
  });

  it('a sink that answers 503, then refuses connections, then hangs, catches up when it comes back: nothing lost or reordered, and calls never wait for it', async () => {
    const acceptedBefore = siem.requests.filter((r) => r.accepted).length;
    await siem.setMode(503);
    for (let i = 0; i < 5; i++) await echo(`while-503-${i}`);
    await waitFor(() => siem.requests.filter((r) => !r.accepted).length >= 2, 'a few 503s');
    // The lag is on /metrics while the sink is behind.
    await waitFor(async () => /gatehouse_audit_sink_lag_records\{sink="siem",tenant="default"\} [1-9]/.test(await metrics()), 'the lag on /metrics');
    expect(await metrics()).toMatch(/gatehouse_audit_sink_oldest_unsent_seconds\{sink="siem",tenant="default"\} (0\.\d*[1-9]|[1-9])/);
    await siem.setMode('down');
    for (let i = 0; i < 5; i++) await echo(`while-down-${i}`);
    const refusedFrom = siem.requests.length;
    await siem.setMode('hang');
    await waitFor(() => siem.requests.length > refusedFrom, 'a request to hang');
    for (let i = 0; i < 5; i++) await echo(`while-hanging-${i}`);
    // Only the failing sink waits: the other kept delivering meanwhile.
    await caughtUp(otel, 27);
    expect(siem.requests.filter((r) => r.accepted).length).toBe(acceptedBefore);

    await siem.setMode('accept');
    const chain = await caughtUp(siem, 27);
    expect(siem.delivered()).toEqual(chain);
    expect(await metrics()).toMatch(/gatehouse_audit_sink_lag_records\{sink="siem",tenant="default"\} 0/);
    // The logs said it failed and came back, naming the sink, never its header or the path's token.
    expect(log.lines.some((l) => l.level === 'warn' && l.fields?.sink === 'siem')).toBe(true);
    expect(log.lines.some((l) => l.level === 'info' && l.fields?.sink === 'siem' && typeof l.fields.lastError === 'string')).toBe(true);
    const said = JSON.stringify(log.lines);
    expect(said).not.toContain('sink-secret');
    expect(said).not.toContain('path-secret');
  });

  it('keeps its cursor across a restart: the next run goes on where the last left off, with no gap', async () => {
    await caughtUp(siem, 27);
    await client.close();
    await h.close();
    const before = siem.delivered().length;
    h = await start(dataDir);
    client = await connectHttp(h.url);
    for (let i = 0; i < 4; i++) await echo(`after-restart-${i}`);
    const chain = await caughtUp(siem, 31);
    // The first run's closing checkpoint and this run's records follow on; a clean stop sends nothing twice.
    expect(firstOfEach(siem.delivered())).toEqual(chain);
    expect(siem.delivered().length - before).toBe(chain.length - before);
    expect(siem.delivered().slice(before)[0].seq).toBe(before + 1);
  });
});
