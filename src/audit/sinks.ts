import type { AuditSinkSender, AuditStore, Clock, JobLedger, SinkCursors, SinkLag } from '../ports.ts';
import type { Logger } from '../log.ts';
import { SinkForwarder, type SinkForwarderOptions } from './sink-forwarder.ts';
import type { RecentRecords } from './recent-records.ts';

/**
 * One sink as the runtime builds it from `audit.sinks`: its sender, made for this process (`instance`, the
 * gateway replica's id, says in each batch who forwarded it), and how it paces itself.
 */
export type SinkSetup = { sender: (instance: string) => AuditSinkSender } & Pick<SinkForwarderOptions, 'batchSize' | 'pollIntervalMs' | 'timeoutMs' | 'retry'>;

/** What a gateway needs to forward its audit trail: its sinks, where their cursors live, the chains they read. */
export interface AuditSinkPorts {
  sinks: SinkSetup[];
  cursors: SinkCursors;
  chains: Pick<AuditStore, 'read' | 'head' | 'tenants'>;
  /** What this process's chain writer appended last: read instead of the store while a sink keeps up. */
  recent?: RecentRecords;
}

/** How long a clean shutdown keeps delivering what the trail holds before it stops (ms). */
export const SINK_DRAIN_MS = 3_000;

/** The audit sinks of one gateway: a forwarder per sink, started and stopped together. */
export class AuditSinks {
  private readonly forwarders: SinkForwarder[];

  constructor(
    private readonly ports: AuditSinkPorts,
    context: { lease: Pick<JobLedger, 'acquireLock' | 'releaseLock'>; holder: string; clock: Clock; log: Logger },
  ) {
    this.forwarders = ports.sinks.map((sink) => new SinkForwarder({ ...sink, sender: sink.sender(context.holder), chains: ports.chains, cursors: ports.cursors, ...(ports.recent ? { recent: ports.recent } : {}), ...context }));
  }

  start(): void {
    for (const forwarder of this.forwarders) forwarder.start();
  }

  /** Drains each sink within `drainMs`, all at once, then closes the cursors. */
  async stop(drainMs = SINK_DRAIN_MS): Promise<void> {
    try {
      await Promise.all(this.forwarders.map((f) => f.stop(drainMs)));
    } finally {
      await this.ports.cursors.close();
    }
  }

  lag(): SinkLag[] {
    return this.forwarders.flatMap((f) => f.lag());
  }
}
