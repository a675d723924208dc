import type { Bus, Clock, Subscription } from '../ports.ts';
import { Subjects, type Heartbeat } from '../protocol/cap.ts';
import { silentLogger, type Logger } from '../log.ts';

export interface WorkerRegistryOptions {
  /** The workers' heartbeat interval, in ms; also how often the registry looks for dead workers. Default 1000. */
  intervalMs?: number;
  /** A worker silent for longer than this many intervals is dead: removed, and `onDead` fires. Default 3. */
  missedBeats?: number;
  /** Where a throwing `onDead` listener is reported. */
  log?: Logger;
}

interface LiveWorker {
  pool: string;
  lastSeen: number;
  reportedActive: number;
  maxParallelJobs: number;
  /** Jobs this gateway sent there and has not seen end: the worker's own count lags by up to a beat. */
  dispatched: Set<string>;
}

type DeadListener = (workerId: string) => void;

/**
 * The gateway's view of the live workers of each pool, fed by the heartbeats on `sys.heartbeat`. It routes a job
 * to the least-loaded live worker and tells the scheduler when a worker dies, so the jobs it ran there can be
 * retried (idempotent tools) or ended as in doubt. A leaving worker beats with capacity 0 until its drain ends.
 */
export class WorkerRegistry {
  private readonly intervalMs: number;
  private readonly deadAfterMs: number;
  private readonly log: Logger;
  private readonly workers = new Map<string, LiveWorker>();
  private readonly turn = new Map<string, number>();
  private readonly deadListeners = new Set<DeadListener>();
  private subscription: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly clock: Clock,
    options: WorkerRegistryOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.deadAfterMs = (options.missedBeats ?? 3) * this.intervalMs;
    this.log = options.log ?? silentLogger;
  }

  start(): void {
    if (this.subscription) return;
    this.subscription = this.bus.subscribe(Subjects.heartbeat, (packet) => {
      if (packet.payload.kind === 'heartbeat') this.onHeartbeat(packet.payload.heartbeat);
    });
    this.timer = setInterval(() => this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.subscription?.unsubscribe();
    clearInterval(this.timer);
    this.subscription = this.timer = undefined;
  }

  /**
   * The live worker of `pool` with the lowest load, ties taken in turn so equal workers share the work. A worker at
   * capacity is still chosen when all are (it queues the job); undefined when the pool has no live worker.
   */
  /** How many live workers each pool has that take jobs: what a health check reports. */
  livePerPool(): Record<string, number> {
    const now = this.clock.now();
    const counts: Record<string, number> = {};
    for (const worker of this.workers.values()) if (worker.maxParallelJobs > 0 && this.isLive(worker, now)) counts[worker.pool] = (counts[worker.pool] ?? 0) + 1;
    return counts;
  }

  pick(pool: string): string | undefined {
    const now = this.clock.now();
    let best: string[] = [];
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const [id, worker] of this.workers) {
      // Capacity 0 is a worker's goodbye: it finishes what it has and takes nothing new.
      if (worker.pool !== pool || worker.maxParallelJobs === 0 || !this.isLive(worker, now)) continue;
      const load = Math.max(worker.reportedActive, worker.dispatched.size) / Math.max(1, worker.maxParallelJobs);
      if (load < bestLoad) [best, bestLoad] = [[id], load];
      else if (load === bestLoad) best.push(id);
    }
    if (best.length === 0) return undefined;
    const turn = this.turn.get(pool) ?? 0;
    this.turn.set(pool, turn + 1);
    return best[turn % best.length];
  }

  noteDispatched(workerId: string, jobId: string): void {
    this.workers.get(workerId)?.dispatched.add(jobId);
  }

  noteEnded(workerId: string, jobId: string): void {
    this.workers.get(workerId)?.dispatched.delete(jobId);
  }

  /** Fires once per death. A dead worker that beats again (it was paused, or cut off from the bus) is live again. */
  onDead(listener: DeadListener): () => void {
    this.deadListeners.add(listener);
    return () => void this.deadListeners.delete(listener);
  }

  /** Removes the workers that missed too many beats. Runs on the timer; tests call it directly. */
  sweep(): void {
    const now = this.clock.now();
    for (const [id, worker] of this.workers) {
      if (this.isLive(worker, now)) continue;
      this.workers.delete(id);
      this.notifyDead(id);
    }
  }

  private onHeartbeat(beat: Heartbeat): void {
    const worker = this.workers.get(beat.workerId);
    const seen = { pool: beat.pool, lastSeen: this.clock.now(), reportedActive: beat.activeJobs, maxParallelJobs: beat.maxParallelJobs };
    if (worker) Object.assign(worker, seen);
    else this.workers.set(beat.workerId, { ...seen, dispatched: new Set() });
  }

  /** Judged by our own clock when the beat arrived, never the worker's `createdAt`: clocks skew across machines. */
  private isLive(worker: LiveWorker, now: number): boolean {
    return now - worker.lastSeen <= this.deadAfterMs;
  }

  /** One failing listener must not keep the others (or the sweep) from running. */
  private notifyDead(workerId: string): void {
    for (const listener of this.deadListeners) {
      try {
        listener(workerId);
      } catch (err) {
        this.log.error('a worker registry onDead listener threw', { error: (err as Error).message });
      }
    }
  }
}
