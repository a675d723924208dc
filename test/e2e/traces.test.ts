import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { NatsBus } from '../../adapters/nats/bus.ts';
import { silentLogger } from '../../src/log.ts';
import type { BusPacket } from '../../src/protocol/cap.ts';
import { GATEHOUSE_BIN } from '../helpers/cli.ts';
import { clusterAvailable, startCluster, text, waitForLiveWorkers, type Cluster, type ToolResult } from '../helpers/distributed.ts';
import type { Logger } from '../../src/log.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';
import { connectHttp, FIXTURE_UPSTREAM, ROOT, startHarness, waitFor, writeStdioGatewayConfig, type Harness } from '../helpers/gateway-harness.ts';
import { otlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.ts';
import { recordingHttpUpstream } from '../fixtures/recording-http-upstream.ts';

// Spans are exported in batches; a short delay keeps the tests from waiting out the default 5 s (read by the SDK).
process.env.OTEL_BSP_SCHEDULE_DELAY = '50';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
const OTLP_KEY = 'otlp-secret-api-key-1234';

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

type Receiver = Awaited<ReturnType<typeof otlpReceiver>>;
type Upstream = Awaited<ReturnType<typeof recordingHttpUpstream>>;


/** Waits for a span of `trace` named `name` (from `service`, by default any) and returns it. */
async function spanNamed(receiver: Receiver, trace: string, name: string, service?: string): Promise<ReceivedSpan> {
  const find = () => receiver.spans.find((s) => s.traceId === trace && s.name === name && (!service || s.service === service));
  await waitFor(() => find() !== undefined, `span ${name} of trace ${trace}`);
  return find()!;
}

const childrenOf = (receiver: Receiver, parent: ReceivedSpan) => receiver.spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);

/** A gateway in front of the recording HTTP upstream (`web`) and the stdio fixture (`fx`). */
async function gatewayWith(upstream: Upstream, telemetry: Record<string, unknown>, log?: Logger): Promise<Harness> {
  const h = await startHarness(
    {
      upstreams: {
        web: { url: upstream.url, headers: {}, timeout: 60_000 },
        fx: { command: process.execPath, args: ['--import', 'tsx', FIXTURE_UPSTREAM], env: {}, cwd: ROOT, timeout: 60_000 },
      } as never,
      telemetry: telemetry as never,
    },
    log ? { log } : {},
  );
  await waitFor(() => h.gateway.catalog.entries().some((e) => e.name === 'web__echo'), 'the HTTP upstream’s tools');
  return h;
}

describe('traces (telemetry.otlp set)', () => {
  let receiver: Receiver;
  let upstream: Upstream;
  let h: Harness;
  let client: Client;
  const logs = recordingLogger();

  beforeAll(async () => {
    [receiver, upstream] = await Promise.all([otlpReceiver(), recordingHttpUpstream()]);
    h = await gatewayWith(upstream, { otlp: { endpoint: receiver.endpoint, headers: { 'x-api-key': OTLP_KEY } } }, logs);
    client = await connectHttp(h.url);
  });

  afterAll(async () => {
    await client?.close();
    await h?.close();
    await Promise.all([receiver?.close(), upstream?.close()]);
  });

  it('one server span per request under the client’s, with the decision and dispatch under it, and the upstream’s call continuing the trace in _meta and the header', async () => {
    await client.callTool({ name: 'web__echo', arguments: {}, _meta: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } });
    const server = await spanNamed(receiver, CLIENT_TRACE, 'tools/call web__echo');
    expect(server).toMatchObject({ service: 'gatehouse', kind: SERVER, parentSpanId: CLIENT_SPAN });
    const sessionId = (client.transport as { sessionId?: string }).sessionId;
    expect(server.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'mcp.session.id': sessionId,
      'mcp.protocol.version': expect.any(String),
      'gen_ai.tool.name': 'web__echo',
      'jsonrpc.request.id': expect.any(String),
      'gatehouse.decision.effect': 'allow',
      'gatehouse.decision.rule_ids': ['read-only-tools'],
      'gatehouse.policy.snapshot': h.gateway.kernel.bundle.snapshot,
    });
    const dispatch = await spanNamed(receiver, CLIENT_TRACE, 'gatehouse.dispatch');
    const upstreamCall = await spanNamed(receiver, CLIENT_TRACE, 'tools/call echo');
    const decide = await spanNamed(receiver, CLIENT_TRACE, 'gatehouse.decide');
    expect(childrenOf(receiver, server).map((s) => s.name).sort()).toEqual(['gatehouse.decide', 'gatehouse.dispatch']);
    expect(decide.attributes).toMatchObject({ 'gatehouse.decision.effect': 'allow', 'gatehouse.decision.rule_ids': ['read-only-tools'] });
    expect(upstreamCall).toMatchObject({ kind: CLIENT, parentSpanId: dispatch.spanId });
    expect(upstreamCall.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'echo', 'gatehouse.upstream': 'web' });
    // The upstream's parent is Gatehouse's span of the upstream call, in the client's trace, in _meta and the header alike.
    const seen = upstream.calls.at(-1)!;
    expect(seen.meta?.traceparent).toBe(`00-${CLIENT_TRACE}-${upstreamCall.spanId}-01`);
    expect(seen.traceparent).toBe(seen.meta?.traceparent);
    expect(seen.meta?.tracestate).toBe('vendor=abc');
    expect(seen.tracestate).toBe('vendor=abc');
  });

  it('takes the parent from the HTTP traceparent header when _meta names none', async () => {
    const trace = 'aaaabbbbccccddddeeeeffff00001111';
    const withHeader: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('traceparent', `00-${trace}-1111222233334444-01`);
      return fetch(input, { ...init, headers });
    };
    const headerClient = await connectHttp(h.url, 'legacy', {}, { fetch: withHeader });
    await headerClient.callTool({ name: 'web__echo', arguments: {} });
    await headerClient.close();
    const server = await spanNamed(receiver, trace, 'tools/call web__echo');
    expect(server.parentSpanId).toBe('1111222233334444');
    expect(upstream.calls.at(-1)!.meta?.traceparent).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));
  });

  it('starts a trace of its own for a client that sent none, and passes it on', async () => {
    const before = upstream.calls.length;
    await client.callTool({ name: 'web__echo', arguments: {} });
    await waitFor(() => upstream.calls.length > before, 'the upstream call');
    const traceparent = String(upstream.calls.at(-1)!.meta?.traceparent);
    const [, trace, spanId] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(traceparent)!;
    const server = await spanNamed(receiver, trace, 'tools/call web__echo');
    expect(server.parentSpanId).toBe('');
    expect((await spanNamed(receiver, trace, 'tools/call echo')).spanId).toBe(spanId);
  });

  it('sets an error status: a JSON-RPC error (error.type its code), and a call held for approval (the approval wait’s span)', async () => {
    const trace = 'abcdefabcdefabcdefabcdefabcdef12';
    await expect(client.callTool({ name: 'web__nope', arguments: {}, _meta: { traceparent: `00-${trace}-${CLIENT_SPAN}-01` } })).rejects.toThrow();
    const failed = await spanNamed(receiver, trace, 'tools/call web__nope');
    expect(failed.status).toBe(ERROR);
    expect(failed.attributes['error.type']).toBe('-32602');

    const held = 'abcdefabcdefabcdefabcdefabcdef34';
    const pending = (await client.callTool({ name: 'fx__write', arguments: { key: 'k', value: 'v' }, _meta: { traceparent: `00-${held}-${CLIENT_SPAN}-01` } })) as { isError?: boolean };
    expect(pending.isError).toBe(true);
    const server = await spanNamed(receiver, held, 'tools/call fx__write');
    expect(server).toMatchObject({ status: ERROR, attributes: expect.objectContaining({ 'error.type': 'tool_error', 'gatehouse.decision.effect': 'require_approval' }) });
    const approval = await spanNamed(receiver, held, 'gatehouse.approval');
    expect(approval.parentSpanId).toBe(server.spanId);
    expect(approval.attributes).toMatchObject({ 'gatehouse.approval.outcome': 'answer', 'gatehouse.approval.id': expect.stringMatching(/^apr_/) });
  });

  it('sends the configured headers to the collector, and never logs them', async () => {
    await waitFor(() => receiver.requests.length > 0, 'an export');
    expect(receiver.requests.every((r) => r.path === '/v1/traces' && r.headers['x-api-key'] === OTLP_KEY)).toBe(true);
    expect(logs.text()).toContain('tracing: spans go to an OTLP/HTTP collector');
    expect(logs.text()).not.toContain(OTLP_KEY);
  });
});

describe('traces off (no telemetry.otlp)', () => {
  let upstream: Upstream;
  let h: Harness;
  let client: Client;

  beforeAll(async () => {
    upstream = await recordingHttpUpstream();
    h = await gatewayWith(upstream, {});
    client = await connectHttp(h.url);
  });

  afterAll(async () => {
    await client?.close();
    await h?.close();
    await upstream?.close();
  });

  it('passes the client’s traceparent to the upstream exactly as sent, in _meta and the header, and makes none up', async () => {
    await client.callTool({ name: 'web__echo', arguments: {}, _meta: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } });
    expect(upstream.calls.at(-1)).toMatchObject({ traceparent: TRACEPARENT, tracestate: 'vendor=abc', meta: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } });
    await client.callTool({ name: 'web__echo', arguments: {} });
    const bare = upstream.calls.at(-1)!;
    expect(bare.traceparent).toBeUndefined();
    expect(bare.meta?.traceparent).toBeUndefined();
  });
});

describe('traces over stdio', () => {
  it('a client on stdio: the same spans, and the stdio upstream gets Gatehouse’s span as its parent in _meta', async () => {
    const receiver = await otlpReceiver();
    const dir = mkdtempSync(join(tmpdir(), 'gh-traces-stdio-'));
    const config = writeStdioGatewayConfig(dir, [`telemetry: { otlp: { endpoint: ${JSON.stringify(receiver.endpoint)} } }`]);
    const client = new Client({ name: 'stdio-traces', version: '1' });
    // The SDK passes a child only a safe list of variables unless told: the batch delay must reach it.
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [GATEHOUSE_BIN, 'start', '--config', config], cwd: dir, env: { ...(process.env as Record<string, string>), OTEL_BSP_SCHEDULE_DELAY: '50' }, stderr: 'pipe' }));
    try {
      await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__meta'), 'the fixture’s tools');
      const result = (await client.callTool({ name: 'fx__meta', arguments: {}, _meta: { traceparent: TRACEPARENT } })) as ToolResult;
      const seen = JSON.parse(text(result)) as { traceparent?: string };
      const server = await spanNamed(receiver, CLIENT_TRACE, 'tools/call fx__meta');
      expect(server).toMatchObject({ kind: SERVER, parentSpanId: CLIENT_SPAN });
      expect(server.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'fx__meta', 'gatehouse.decision.effect': 'allow' });
      const upstreamCall = await spanNamed(receiver, CLIENT_TRACE, 'tools/call meta');
      expect(seen.traceparent).toBe(`00-${CLIENT_TRACE}-${upstreamCall.spanId}-01`);
    } finally {
      await client.close();
      await receiver.close();
    }
  });
});

// Real NATS and Redis started here, one gateway replica and one worker process, both exporting to the receiver.
describe.skipIf(!clusterAvailable())('traces in distributed mode', () => {
  let receiver: Receiver;
  let cluster: Cluster;
  let client: Client | undefined;

  beforeAll(async () => {
    receiver = await otlpReceiver();
    cluster = await startCluster({ gateways: 1, workers: 1, extraConfig: [`telemetry: { otlp: { endpoint: ${JSON.stringify(receiver.endpoint)} } }`] });
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
    await receiver?.close();
  });

  it('the worker’s span of the upstream call joins the client’s trace under the gateway’s dispatch, and the job travels under that trace id', async () => {
    const bus = await NatsBus.connect({ url: cluster.nats.url, name: 'trace-watcher', log: silentLogger });
    const jobPackets: BusPacket[] = [];
    const watching = [bus.subscribe('job.>', (packet) => void jobPackets.push(packet)), bus.subscribe('worker.*.jobs', (packet) => void jobPackets.push(packet))];
    try {
      client = await connectHttp(cluster.gateways[0].url);
      await waitForLiveWorkers(cluster.gateways[0], 1);
      await waitFor(async () => (await client!.listTools()).tools.some((t) => t.name === 'fx__echo'), 'the pool’s tools');
      const result = (await client.callTool({ name: 'fx__echo', arguments: { text: 'traced' }, _meta: { traceparent: TRACEPARENT } })) as ToolResult;
      expect(text(result)).toBe('echo: traced');
      const server = await spanNamed(receiver, CLIENT_TRACE, 'tools/call fx__echo', 'gatehouse');
      const dispatch = await spanNamed(receiver, CLIENT_TRACE, 'gatehouse.dispatch', 'gatehouse');
      const onWorker = await spanNamed(receiver, CLIENT_TRACE, 'tools/call echo', 'gatehouse-worker');
      expect(server.parentSpanId).toBe(CLIENT_SPAN);
      expect(dispatch.parentSpanId).toBe(server.spanId);
      expect(onWorker).toMatchObject({ kind: CLIENT, parentSpanId: dispatch.spanId });
      expect(onWorker.attributes['gatehouse.executor']).toMatch(/^wk-tools-/);
      // The CAP packet of the job carries the trace id.
      await waitFor(() => jobPackets.some((p) => p.payload.kind === 'jobRequest'), 'the job packet');
      expect(jobPackets.filter((p) => p.payload.kind === 'jobRequest').map((p) => p.traceId)).toContain(CLIENT_TRACE);
    } finally {
      for (const subscription of watching) subscription.unsubscribe();
      await bus.close();
    }
  });
});
