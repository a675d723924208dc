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

/** Extra beats from `beatNow` come at most this often, so a burst of jobs costs one beat, not one per job. */
const MIN_EXTRA_BEAT_GAP_MS = 100;

/**
 * Publishes the worker's CAP Heartbeat on `sys.heartbeat`, so every gateway knows it is alive and how busy it is.
 * A publish that fails (the bus is down) is dropped: the next beat carries fresher numbers anyway.
 */
export class Heartbeater {
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private trailing: NodeJS.Timeout | undefined;
  private lastBeatAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly bus: Bus,
    private readonly clock: Clock,
    private readonly info: WorkerInfo,
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
    clearTimeout(this.trailing);
    this.timer = this.trailing = undefined;
  }

  /**
   * Stops beating with a last beat of capacity 0: the worker is leaving, so gateways send it nothing more, while
   * the jobs it still finishes (a drain) end normally. CAP has no goodbye message; capacity 0 is the signal.
   */
  async goodbye(): Promise<void> {
    this.stop();
    await this.beat(0);
  }

  /**
   * Beats at once, for a load change the gateways should see before the next tick. Throttled: inside the gap the
   * beat is deferred to its end (one at most), so the latest load still goes out early. A stopped worker stays quiet.
   */
  beatNow(): void {
    if (!this.timer || this.trailing) return;
    const wait = this.lastBeatAt + MIN_EXTRA_BEAT_GAP_MS - this.clock.now();
    if (wait <= 0) return void this.beat();
    this.trailing = setTimeout(() => {
      this.trailing = undefined;
      void this.beat();
    }, wait);
    this.trailing.unref();
  }

  private async beat(maxParallelJobs = this.info.maxParallelJobs): Promise<void> {
    const now = this.clock.now();
    this.lastBeatAt = now;
    const { workerId, pool, capabilities, labels = {} } = this.info;
    const heartbeat: Heartbeat = { workerId, pool, maxParallelJobs, capabilities, labels, activeJobs: this.activeJobs(), cpuLoad: loadavg()[0] / availableParallelism() };
    try {
      // A heartbeat belongs to no call, hence no trace.
      await this.bus.publish(Subjects.heartbeat, { traceId: '', senderId: workerId, createdAt: now, protocolVersion: CAP_PROTOCOL_VERSION, payload: { kind: 'heartbeat', heartbeat } });
    } catch {
      // The bus is down: the bus adapter reports that; the next tick tries again.
    }
  }
}
