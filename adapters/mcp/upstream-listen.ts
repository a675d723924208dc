import type { RpcClient } from './rpc-client.ts';

/** How long before a listen the upstream ended (or failed) is opened again (ms). */
const REOPEN_MS = 1_000;

/**
 * The one `subscriptions/listen` request Gatehouse keeps open to a 2026-07-28 upstream: its stand-in for the 2025
 * GET stream and for `resources/subscribe`. It asks for every list change the upstream advertises and for updates
 * of the URIs Gatehouse's clients subscribed to; the notifications it carries reach the upstream's listener like
 * any other. A change of URIs replaces it (the upstream's filter is fixed per listen); one that ends is reopened.
 */
export class UpstreamListen {
  private readonly uris = new Set<string>();
  private current: AbortController | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly rpc: RpcClient,
    private readonly live: () => boolean,
    private readonly capabilities: () => Record<string, unknown> | undefined,
  ) {}

  /** Opens (or reopens) the listen with the current filter. */
  open(): void {
    this.stop();
    if (!this.live()) return;
    const filter = this.filter();
    if (!filter) return;
    const controller = new AbortController();
    this.current = controller;
    const ended = () => {
      if (this.current !== controller || controller.signal.aborted || !this.live()) return;
      this.current = undefined;
      this.reopenTimer = setTimeout(() => this.open(), REOPEN_MS);
      this.reopenTimer.unref();
    };
    this.rpc.request('subscriptions/listen', { notifications: filter }, { signal: controller.signal }).then(ended, ended);
  }

  subscribe(uri: string): Record<string, unknown> {
    if (!this.uris.has(uri)) {
      this.uris.add(uri);
      this.open();
    }
    return {};
  }

  unsubscribe(uri: string): Record<string, unknown> {
    if (this.uris.delete(uri)) this.open();
    return {};
  }

  stop(): void {
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    this.current?.abort('replaced');
    this.current = undefined;
  }

  /** What to ask for: what the upstream advertises, and the subscribed URIs; none when there is nothing. */
  private filter(): Record<string, unknown> | undefined {
    const caps = this.capabilities() ?? {};
    const listChanged = (key: string) => (caps[key] as { listChanged?: unknown } | undefined)?.listChanged === true;
    const filter: Record<string, unknown> = {};
    if (listChanged('tools')) filter.toolsListChanged = true;
    if (listChanged('prompts')) filter.promptsListChanged = true;
    if (listChanged('resources')) filter.resourcesListChanged = true;
    if (this.uris.size > 0 && (caps.resources as { subscribe?: unknown } | undefined)?.subscribe === true) filter.resourceSubscriptions = [...this.uris];
    return Object.keys(filter).length > 0 ? filter : undefined;
  }
}
