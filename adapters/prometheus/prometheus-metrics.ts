import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { CallObservation, Metrics, SinkLag, UpstreamState } from '../../src/ports.ts';
import { CounterFamily, HistogramFamily, type HistogramSeries } from './series.ts';

/** The gauges read at scrape time, from the runtime: nothing on the call path pays for them. */
export interface MetricSources {
  approvalsPending(): Promise<number>;
  auditBacklog(): number;
  /** Audit events appended since start. */
  auditAppended(): number;
  upstreams(): Iterable<{ name: string; state: UpstreamState }>;
  /** How far each audit sink this process forwards is behind, per tenant. */
  sinkLag(): Iterable<SinkLag>;
  /** Distributed mode: whether this replica's NATS and Redis links are up. */
  links?(): { nats: boolean; redis: boolean };
  /** Distributed mode: the jobs in the dead-letter queue. */
  deadLetters?(): Promise<number>;
}

export interface PrometheusMetricsOptions {
  /** Distinct tool names (per upstream) counted under their own name; the rest are `tool="_other"`. */
  maxTools: number;
  sources: MetricSources;
  /** Node's process metrics (`process_cpu_seconds_total`, heap, event loop lag …). Default true. */
  processMetrics?: boolean;
}

/** What a label past its cap becomes. */
export const OTHER = '_other';
/** Distinct `mcp_method_name` values: the MCP methods are a few dozen; a client inventing more does not grow the series. */
const MAX_METHODS = 64;

// Seconds. Gatehouse's own share of a call is sub-millisecond to a few ms; upstreams and humans take far longer.
const CALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const DECISION_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05];
const APPROVAL_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14400, 86400];
// The OTel semantic conventions' advice for mcp.server.operation.duration.
const MCP_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

/**
 * The Metrics port on prom-client, in a registry of its own (two gateways in one process do not share series).
 * Label children are cached by their values, so a call's observations are map lookups and additions.
 */
export class PrometheusMetrics implements Metrics {
  readonly enabled = true;
  readonly registry = new Registry();
  private readonly calls = new CounterFamily('gatehouse_calls_total', 'Governed tool calls, by decision, upstream, tool and outcome');
  private readonly callDuration = new HistogramFamily('gatehouse_call_duration_seconds', "Governed call duration: part=gatehouse is Gatehouse's own time (total less upstream and approval wait), part=upstream the dispatch to result", CALL_BUCKETS);
  private readonly decision: HistogramSeries;
  private readonly approvalWait: HistogramSeries;
  private readonly mcpOperation = new HistogramFamily('mcp_server_operation_duration_seconds', 'OTel mcp.server.operation.duration: MCP requests answered, by method', MCP_BUCKETS);
  private readonly restarts: Counter<'upstream'>;
  private readonly tools = new Set<string>();
  private readonly methods = new Set<string>();

  constructor(private readonly options: PrometheusMetricsOptions) {
    const registers = [this.registry];
    const { sources } = options;
    const decision = new HistogramFamily('gatehouse_kernel_decision_duration_seconds', 'Time the policy kernel took to decide a call', DECISION_BUCKETS);
    const approvalWait = new HistogramFamily('gatehouse_approval_wait_seconds', 'From an approval created to granted, for the calls that then ran', APPROVAL_BUCKETS);
    // Unlabelled histograms show from the start, with zero counts, as prom-client's do.
    this.decision = decision.at('', () => ({}));
    this.approvalWait = approvalWait.at('', () => ({}));
    for (const family of [this.calls, this.callDuration, decision, approvalWait, this.mcpOperation]) this.registry.registerMetric(family as never);
    let appended = 0;
    new Counter({
      name: 'gatehouse_audit_appended_events_total',
      help: 'Audit events appended to the hash chains',
      registers,
      collect() {
        const now = sources.auditAppended();
        if (now > appended) this.inc(now - appended);
        appended = now;
      },
    });
    this.restarts = new Counter({ name: 'gatehouse_upstream_restarts_total', help: 'Times an upstream came back after being down', labelNames: ['upstream'], registers });
    let pending = 0;
    new Gauge({
      name: 'gatehouse_approvals_pending',
      help: 'Approvals waiting for a human',
      registers,
      async collect() {
        // A store that cannot answer keeps the last value: the scrape still serves everything else.
        pending = await sources.approvalsPending().catch(() => pending);
        this.set(pending);
      },
    });
    new Gauge({
      name: 'gatehouse_audit_backlog_events',
      help: 'Audit events accepted but not yet written',
      registers,
      collect() {
        this.set(sources.auditBacklog());
      },
    });
    const restarts = this.restarts;
    new Gauge({
      name: 'gatehouse_upstream_up',
      help: 'Whether an upstream is ready (1) or not (0)',
      labelNames: ['upstream'],
      registers,
      collect() {
        this.reset();
        for (const u of sources.upstreams()) {
          this.set({ upstream: u.name }, u.state === 'ready' ? 1 : 0);
          restarts.inc({ upstream: u.name }, 0); // every upstream shows, restarted or not
        }
      },
    });
    const sinkGauges: [name: string, help: string, value: (lag: SinkLag) => number][] = [
      ['gatehouse_audit_sink_lag_records', 'Audit records stored and not yet delivered to a sink, per sink and tenant (reported by the replica that forwards the sink)', (lag) => lag.records],
      ['gatehouse_audit_sink_oldest_unsent_seconds', 'Age of the oldest audit record not yet delivered to a sink (0 when it is caught up)', (lag) => lag.oldestSeconds],
    ];
    for (const [name, help, value] of sinkGauges) {
      new Gauge({
        name,
        help,
        labelNames: ['sink', 'tenant'],
        registers,
        collect() {
          this.reset();
          for (const lag of sources.sinkLag()) this.set({ sink: lag.sink, tenant: lag.tenant }, value(lag));
        },
      });
    }
    if (sources.links) {
      const links = sources.links;
      new Gauge({
        name: 'gatehouse_link_up',
        help: "Whether this replica's link to NATS or Redis is up (distributed mode)",
        labelNames: ['link'],
        registers,
        collect() {
          const up = links();
          this.set({ link: 'nats' }, up.nats ? 1 : 0);
          this.set({ link: 'redis' }, up.redis ? 1 : 0);
        },
      });
    }
    if (sources.deadLetters) {
      const dead = sources.deadLetters;
      new Gauge({
        name: 'gatehouse_dlq_jobs',
        help: 'Jobs in the dead-letter queue (distributed mode)',
        registers,
        async collect() {
          this.set(await dead());
        },
      });
    }
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  callEnded(call: CallObservation): void {
    const { decision, upstream, outcome } = call;
    const tool = this.capped(this.tools, `${upstream}\0${call.tool}`, this.options.maxTools) ? call.tool : OTHER;
    this.calls.at(`${decision}\0${upstream}\0${tool}\0${outcome}`, () => ({ decision, upstream, tool, outcome })).inc();
    const own = Math.max(0, call.seconds - call.upstreamSeconds - call.approvalSeconds);
    this.callDuration.at(`g\0${upstream}`, () => ({ part: 'gatehouse', upstream })).observe(own);
    if (call.upstreamSeconds > 0) this.callDuration.at(`u\0${upstream}`, () => ({ part: 'upstream', upstream })).observe(call.upstreamSeconds);
  }

  decided(seconds: number): void {
    this.decision.observe(seconds);
  }

  approvalWaited(seconds: number): void {
    this.approvalWait.observe(seconds);
  }

  operation(method: string, seconds: number, errorType?: string): void {
    const name = this.capped(this.methods, method, MAX_METHODS) ? method : OTHER;
    const error = errorType ?? '';
    this.mcpOperation.at(`${name}\0${error}`, () => ({ mcp_method_name: name, error_type: error })).observe(seconds);
  }

  upstreamRestarted(upstream: string): void {
    this.restarts.inc({ upstream });
  }

  /** The Prometheus text exposition of every metric (bound: the route holds it alone). */
  readonly scrape = async (): Promise<{ contentType: string; text: string }> => ({ contentType: this.registry.contentType, text: await this.registry.metrics() });

  /** Whether `value` has (or now takes) one of the `max` places of its label. */
  private capped(seen: Set<string>, value: string, max: number): boolean {
    if (seen.has(value)) return true;
    if (seen.size >= max) return false;
    seen.add(value);
    return true;
  }
}
