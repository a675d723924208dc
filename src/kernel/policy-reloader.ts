import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { statSync } from 'node:fs';
import type { Clock } from '../ports.ts';
import type { Logger } from '../log.ts';
import type { AuditEvent } from '../protocol/audit-record.ts';
import type { Kernel } from './kernel.ts';
import type { PolicyBundle } from './bundle.ts';

export type ReloadOutcome =
  | { kind: 'swapped'; previous: string; current: string }
  | { kind: 'unchanged'; current: string }
  | { kind: 'refused'; current: string; error: string };

export interface PolicyReloaderDeps {
  /** The config's `policies:` entries (files or directories), absolute. */
  paths: readonly string[];
  /** Other files whose change reloads the bundle (the data dir's pack installs); they need not exist yet. */
  alsoWatch?: readonly string[];
  load(paths: readonly string[]): PolicyBundle;
  kernel: Kernel;
  /** Where `policy.reloaded` and `policy.reload_refused` go (the audit trail). */
  audit: { record(event: AuditEvent): void };
  clock: Clock;
  log: Logger;
  /** Called after a new bundle is in place (what clients may list can have changed). */
  onSwapped(): void;
  /** Quiet time after the last file event before reloading: editors write in several steps. */
  debounceMs?: number;
  /** This reloader keeps the `shadowPolicies` draft: its events say `shadow: true`, its log lines "shadow policy". */
  shadow?: boolean;
}

/**
 * Hot reload of the policy bundle. A changed file is validated as a whole new bundle first; a valid one swaps in
 * atomically (the kernel compiles it fully, then replaces one reference), with an audit event that carries the
 * old and new snapshots. An invalid one is refused loudly, and the last good bundle keeps serving.
 */
export class PolicyReloader {
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: PolicyReloaderDeps) {}

  reload(actor: string): ReloadOutcome {
    const { kernel, audit, clock, log } = this.deps;
    const previous = kernel.snapshot;
    const [what, shadow] = this.deps.shadow ? ['shadow policy', { shadow: true }] : ['policy', {}];
    let bundle: PolicyBundle;
    try {
      bundle = this.deps.load(this.deps.paths);
    } catch (err) {
      const error = (err as Error).message;
      log.error(`${what} reload refused; still serving ${previous}: ${error}`);
      audit.record({ tenant: 'default', at: clock.now(), type: 'policy.reload_refused', actor, data: { current: previous, error, ...shadow } });
      return { kind: 'refused', current: previous, error };
    }
    if (bundle.snapshot === previous) return { kind: 'unchanged', current: previous };
    kernel.replace(bundle);
    log.info(`${what} reloaded: ${previous} → ${bundle.snapshot}`);
    audit.record({ tenant: 'default', at: clock.now(), type: 'policy.reloaded', actor, data: { previous, current: bundle.snapshot, files: bundle.files, ...shadow } });
    this.deps.onSwapped();
    return { kind: 'swapped', previous, current: bundle.snapshot };
  }

  /** Watches the folders that hold the policy files (editors replace files by rename, which a file watch misses). */
  watch(): void {
    const folders = new Map<string, (name: string) => boolean>();
    for (const path of [...this.deps.paths, ...(this.deps.alsoWatch ?? [])]) {
      if (isDirectory(path)) folders.set(path, (name) => /\.ya?ml$/.test(name));
      else {
        const previous = folders.get(dirname(path));
        folders.set(dirname(path), (name) => name === basename(path) || (previous?.(name) ?? false));
      }
    }
    for (const [folder, relevant] of folders) {
      try {
        const watcher = watch(folder, { persistent: false }, (_event, name) => {
          if (name === null || relevant(String(name))) this.schedule();
        });
        watcher.on('error', (err) => this.deps.log.warn(`stopped watching ${folder} for policy changes: ${err.message}`));
        this.watchers.push(watcher);
      } catch (err) {
        this.deps.log.warn(`cannot watch ${folder} for policy changes: ${(err as Error).message}`);
      }
    }
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload('policy-watcher'), this.deps.debounceMs ?? 150);
    this.timer.unref();
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
