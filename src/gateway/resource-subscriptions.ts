import type { Upstream } from '../ports.ts';
import type { ClientSession } from './session.ts';

/**
 * Resource subscriptions across client sessions. All sessions share one connection per upstream, so the
 * upstream holds a single subscription per URI on behalf of every subscriber: it is made for the first, kept
 * while any remains, dropped after the last unsubscribes or goes away, and made again when the upstream
 * reconnects (its new session starts with none).
 */
export class ResourceSubscriptions {
  private readonly byUri = new Map<string, { upstream: Upstream; sessions: Set<ClientSession> }>();

  /** Whether the upstream already holds a subscription to this URI for some session. */
  has(uri: string): boolean {
    return this.byUri.has(uri);
  }

  add(session: ClientSession, uri: string, upstream: Upstream): void {
    let entry = this.byUri.get(uri);
    if (!entry) this.byUri.set(uri, (entry = { upstream, sessions: new Set() }));
    entry.sessions.add(session);
    session.subscriptions.add(uri);
  }

  /** Drops one session's subscription. True when no session holds the URI any more: the upstream may let it go. */
  remove(session: ClientSession, uri: string): boolean {
    session.subscriptions.delete(uri);
    const entry = this.byUri.get(uri);
    if (!entry) return true;
    entry.sessions.delete(session);
    if (entry.sessions.size > 0) return false;
    this.byUri.delete(uri);
    return true;
  }

  /** Forgets a session that ended; returns what the upstreams may now let go. */
  dropSession(session: ClientSession): { uri: string; upstream: Upstream }[] {
    const released: { uri: string; upstream: Upstream }[] = [];
    for (const uri of [...session.subscriptions]) {
      const upstream = this.byUri.get(uri)?.upstream;
      if (this.remove(session, uri) && upstream) released.push({ uri, upstream });
    }
    return released;
  }

  subscribers(uri: string): ReadonlySet<ClientSession> {
    return this.byUri.get(uri)?.sessions ?? EMPTY;
  }

  /** The URIs some session holds on this upstream: to subscribe again after it reconnects. */
  urisOn(upstream: Upstream): string[] {
    return [...this.byUri].filter(([, entry]) => entry.upstream === upstream).map(([uri]) => uri);
  }
}

const EMPTY: ReadonlySet<ClientSession> = new Set();
