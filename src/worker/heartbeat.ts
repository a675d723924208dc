import { availableParallelism, loadavg } from 'node:os';
import type { Bus, Clock } from '../ports.ts';
import { CAP_PROTOCOL_VERSION, Subjects, type Heartbeat } from '../protocol/cap.ts';

export interface WorkerInfo {
  workerId: string;
  pool: string;
  /** Jobs the worker runs at once; more are queued on the worker. */
  maxParallelJobs: number;
  /** The upstream names it hosts. */
  capabilities: string[];
  labels?: Record<string, string>;
}

export interface HeartbeaterOptions {
  /** Time between beats, in ms. Default 1000. The gateway's registry must use the same interval. */
  intervalMs?: number;
}

/**
 * Publishes the worker's CAP Heartbeat on `sys.heartbeat`, so every gateway knows it is alive and how busy it is.
 * A publish that fails (the bus is down) is dropped: the next beat carries fresher numbers anyway.
 */
export class Heartbeater {
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private leaving = false;

  constructor(
    private readonly bus: Bus,
    private readonly clock: Clock,
    private readonly info: WorkerInfo,
    /** The jobs on the worker, running or queued, so a load above `maxParallelJobs` shows a queue. */
    private readonly activeJobs: () => number,
    options: HeartbeaterOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    // Beating must never be what keeps a worker process from exiting.
    this.timer.unref();
    void this.beat();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * The worker is leaving: from now on its beats, the first at once, say capacity 0, so gateways send it nothing
   * more. It keeps beating while it drains, so they do not declare it dead (and its calls in doubt) while it
   * finishes them; `stop` once the drain has ended. CAP has no goodbye message; capacity 0 is the signal.
   */
  async goodbye(): Promise<void> {
    this.leaving = true;
    await this.beat();
  }

  private async beat(): Promise<void> {
    const now = this.clock.now();
    const { workerId, pool, capabilities, labels = {} } = this.info;
    const maxParallelJobs = this.leaving ? 0 : this.info.maxParallelJobs;
    const heartbeat: Heartbeat = { workerId, pool, maxParallelJobs, capabilities, labels, activeJobs: this.activeJobs(), cpuLoad: loadavg()[0] / availableParallelism() };
    try {
      // A heartbeat belongs to no call, hence no trace.
      await this.bus.publish(Subjects.heartbeat, { traceId: '', senderId: workerId, createdAt: now, protocolVersion: CAP_PROTOCOL_VERSION, payload: { kind: 'heartbeat', heartbeat } });
    } catch {
      // The bus is down: the bus adapter reports that; the next tick tries again.
    }
  }
}
