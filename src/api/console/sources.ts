import type { AuditStore, UpstreamState } from '../../ports.ts';
import type { CatalogEntry } from '../../call/catalog.ts';
import type { ChainStatus } from '../../audit/chain-status.ts';

/** One upstream as the Upstreams page shows it. */
export interface UpstreamHealth {
  name: string;
  state: UpstreamState;
  /** Why it is down, when it failed (its message only: stderr may hold secrets). */
  failure?: string;
  /** Times it came back after being down, since this gateway started. */
  restarts: number;
  /** The worker pool that hosts it, in distributed mode. */
  pool?: string;
}

/**
 * What the Policy, Upstreams and Overview pages read of the running gateway, besides the approver routes' services:
 * built once by the runtime (runtime/console-sources.ts), each read cheap or bounded.
 */
export interface ConsoleSources {
  /** The audit trail read newest first (rule hits, the draft replay, the overview's charts); absent without one. */
  records?: Pick<AuditStore, 'readBack'>;
  upstreams(): UpstreamHealth[];
  /** The live catalog's tools, each pinned by its definition's digest. */
  tools(): CatalogEntry[];
  /** The principals this gateway knows in a tenant (its API keys', or the local user), for whom tools are listed. */
  principals(tenant: string): string[];
  /** The audit chain's last verification, refreshed in the background; absent where the chain cannot be read whole (distributed). */
  chain?: ChainStatus;
  /** The dead-letter queue's size (the data dir's ledger, or Redis's). */
  deadLetters?(): Promise<number>;
}
