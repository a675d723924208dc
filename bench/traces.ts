/**
 * What tracing costs a governed call: three `gatehouse start`s side by side (bench/side-by-side.ts), the same allow
 * policy and stdio echo upstream: metrics and tracing both off (the baseline), metrics on with tracing off (the
 * issue's target: CPU per call at most +5% over the baseline), and both on, exporting every span over OTLP/HTTP to a
 * sink in this process that reads and drops them (its cost reported, and how many spans per call reached it).
 * Env: BENCH_TRACES_CALLS (calls per batch, 2000), BENCH_TRACES_ROUNDS (7).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll } from './processes.ts';
import { cpuRatios, medianOf, printSides, sideBySide } from './side-by-side.ts';
import { ALLOW_POLICY, startGatehouseHttp, type HttpTarget } from './targets.ts';
import { SpanKind } from '@opentelemetry/api';
import { noTracing } from '../src/ports.ts';
import { ClientSession } from '../src/gateway/session.ts';
import { endRequestSpan, startRequestSpan } from '../src/gateway/request-span.ts';
import { CallTrace, endStage } from '../src/call/call-trace.ts';
import { parentContextOf, withTraceContext } from '../src/protocol/trace-context.ts';

const TARGET_RATIO = 1.05;
const SIDES = ['both-off', 'metrics-on', 'traces-on'];

export async function printTracesBench(): Promise<void> {
  const calls = Number(process.env.BENCH_TRACES_CALLS ?? 2_000);
  const rounds = Number(process.env.BENCH_TRACES_ROUNDS ?? 7);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-traces-'));
  const sink = await spanSink();
  const targets: HttpTarget[] = [];
  const kernel = { decisionBudget: '5s' };
  try {
    // One after the other: three starting at once on a busy 2-core machine can outlast the start timeout. A
    // generous decision budget: on such a machine a descheduled decision would otherwise be denied (fail closed),
    // which ends the bench; the budget costs nothing per call.
    targets.push(await startGatehouseHttp('both-off', 'metrics and traces off', { policy: ALLOW_POLICY, workDir, metrics: false, extra: { kernel } }));
    targets.push(await startGatehouseHttp('metrics-on', 'metrics on, traces off', { policy: ALLOW_POLICY, workDir, metrics: true, extra: { kernel } }));
    targets.push(await startGatehouseHttp('traces-on', 'metrics and traces on', { policy: ALLOW_POLICY, workDir, metrics: true, extra: { kernel, telemetry: { otlp: { endpoint: sink.endpoint } } } }));
    const figures = await sideBySide(targets, { calls, rounds });
    // Stopped first, so that what the traces side still had batched is exported and counted.
    await Promise.allSettled(targets.splice(0).map((t) => t.stop()));
    console.log(`\nTraces: governed echo call (allow, stdio upstream), HTTP 2025; ${calls} calls per batch, median of ${rounds} interleaved rounds`);
    printSides(figures, SIDES);
    const metricsOn = cpuRatios(figures, 'metrics-on', 'both-off');
    const tracesOn = cpuRatios(figures, 'traces-on', 'both-off');
    for (const r of metricsOn) console.log(`CPU per call, metrics on + traces off / both off at c=${r.concurrency}: ${r.ratio.toFixed(3)} (target ≤ ${TARGET_RATIO}) ${r.ratio <= TARGET_RATIO ? 'PASS' : 'MISS'}`);
    for (const r of tracesOn) console.log(`CPU per call, metrics and traces on / both off at c=${r.concurrency}: ${r.ratio.toFixed(3)} (reported: the cost of recording and exporting spans)`);
    // The traces side's tool calls, warm-ups included: 2 concurrencies × (1,000 warm-up + rounds × (100 + calls)).
    // Each has 4 spans (request, decision, dispatch, upstream call); the sessions' initialize and lists add a few.
    const tracedCalls = 2 * (Math.min(1_000, calls) + rounds * (100 + calls));
    console.log(`spans received by the OTLP sink: ${sink.spans()} for ${tracedCalls} tool calls (${(sink.spans() / tracedCalls).toFixed(2)} per call; 4 expected, fewer if the exporter's queue dropped some)`);
    const offUs = noOpTracingUs();
    const baselineUs = medianOf(figures, 'both-off@1', (r) => r.cpuUs);
    console.log(
      `tracing off, in process: the no-op span work of one call (request span, decision, dispatch, upstream call, context passed on) costs ${offUs.plain.toFixed(2)} µs, ${offUs.traced.toFixed(2)} µs with a client traceparent: ${((100 * offUs.traced) / baselineUs).toFixed(2)}% of the both-off CPU per call at c=1`,
    );
    console.log(JSON.stringify({ bench: 'traces', calls, rounds, metricsOn, tracesOn, spansPerCall: sink.spans() / tracedCalls, noOpUs: offUs }));
  } finally {
    await Promise.allSettled(targets.map((t) => t.stop()));
    await sink.close();
    killAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** An OTLP/HTTP endpoint that counts the spans it is sent and keeps nothing. */
async function spanSink(): Promise<{ endpoint: string; spans(): number; close(): Promise<void> }> {
  let spans = 0;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      // A span is one object with a spanId; counting the key is enough here, and cheaper than decoding.
      spans += text.split('"spanId"').length - 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans: () => spans,
    close: () => new Promise((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}

/**
 * What tracing off adds to a call, in this process: the same calls the front, the pipeline and the executor make on
 * the no-op tracer, without a client traceparent and with one (then the client's context is passed on).
 */
function noOpTracingUs(): { plain: number; traced: number } {
  const tracer = noTracing.tracer;
  const session = new ClientSession('bench', 'legacy', { principal: 'p', tenant: 't' }, '2025-11-25');
  const perCall = (meta: Record<string, unknown> | undefined) => {
    const request = { jsonrpc: '2.0' as const, id: 1, method: 'tools/call', params: { name: 'echo__echo', arguments: {}, ...(meta ? { _meta: meta } : {}) } };
    return () => {
      const { span, context } = startRequestSpan(tracer, session, request, undefined);
      const spans = new CallTrace(tracer, context, meta);
      endStage(spans.child('gatehouse.decide'));
      const dispatch = spans.child('gatehouse.dispatch');
      const stored = withTraceContext(meta, dispatch);
      const upstream = tracer.startSpan('tools/call echo', { kind: SpanKind.CLIENT }, parentContextOf(stored));
      withTraceContext(stored, upstream);
      upstream.end();
      endStage(dispatch);
      endRequestSpan(span, undefined);
    };
  };
  const time = (run: () => void) => {
    const n = 200_000;
    for (let i = 0; i < 20_000; i++) run();
    const started = performance.now();
    for (let i = 0; i < n; i++) run();
    return ((performance.now() - started) * 1000) / n;
  };
  return { plain: time(perCall(undefined)), traced: time(perCall({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' })) };
}
