import type { AuditStore } from '../ports.ts';
import type { CheckpointPublicKey } from './checkpoint.ts';
import { verifyStore, type VerifyReport } from './verify.ts';

export interface ChainVerification {
  report: VerifyReport;
  /** When this verification finished (ms since the epoch). */
  verifiedAt: number;
}

/**
 * The audit chain's status for the console: the last full verification of each tenant's chain, kept, and started
 * again in the background once it is older than `maxAgeMs`. A verification reads the whole chain, so a page never
 * waits for one: it shows the last (or none yet), and one tenant never has two running.
 */
export class ChainStatus {
  private readonly last = new Map<string, ChainVerification>();
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Pick<AuditStore, 'read' | 'recordedHead' | 'tornTail' | 'anchor'>,
    private readonly key: () => Promise<CheckpointPublicKey | undefined>,
    private readonly now: () => number,
    private readonly maxAgeMs = 60_000,
  ) {}

  /** The last verification of `tenant`'s chain, starting a new one when it is missing or stale. */
  of(tenant: string): ChainVerification | undefined {
    const last = this.last.get(tenant);
    if (!this.running.has(tenant) && (!last || this.now() - last.verifiedAt >= this.maxAgeMs)) {
      const run = this.verify(tenant).finally(() => this.running.delete(tenant));
      this.running.set(tenant, run);
    }
    return last;
  }

  /** Waits for the verification under way, if any (tests, and a first look that can afford the wait). */
  async settled(tenant: string): Promise<ChainVerification | undefined> {
    await this.running.get(tenant);
    return this.last.get(tenant);
  }

  private async verify(tenant: string): Promise<void> {
    try {
      const report = await verifyStore(this.store, tenant, await this.key());
      this.last.set(tenant, { report, verifiedAt: this.now() });
    } catch {
      // An unreadable chain keeps the last verification shown; the next look tries again.
    }
  }
}
