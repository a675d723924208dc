import type { Upstream } from '../ports.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_UPSTREAM_TIMEOUT_MS } from '../config/schema.ts';
import { listAllPages } from './list-pages.ts';
import { exposedName, SEPARATOR } from './tool-names.ts';
import { LOG_LEVELS, type LogLevel } from '../protocol/mcp.ts';

/** How `collect` gathers a list: `namespaceNames` for prompts; `keep` leaves out items (by their upstream). */
export interface CollectOptions {
  namespaceNames?: boolean;
  keep?: (server: string, item: Record<string, unknown>) => boolean;
}

/**
 * The configured upstreams by name, and what routing needs besides tools: which upstream owns a resource URI
 * (learned from its lists and templates), and fan-out of lists and broadcasts to every ready upstream that
 * declared the capability. An upstream that is down is skipped, never waited for.
 */
export class UpstreamDirectory {
  private readonly uriOwners = new Map<string, string>();
  /** Exposed prompt name → its upstream and the upstream's own name. */
  private readonly nameOwners = new Map<string, { server: string; name: string }>();
  private templates: { server: string; pattern: RegExp }[] = [];
  private logLevel: LogLevel | undefined;
  private readonly reportedCollisions = new Set<string>();

  constructor(
    private readonly upstreams: ReadonlyMap<string, Upstream>,
    private readonly timeouts: ReadonlyMap<string, number>,
    private readonly log: Logger,
    /** Upstreams configured with `namespace: false`: their names reach clients unprefixed. */
    private readonly unprefixed: ReadonlySet<string> = new Set(),
  ) {}

  get(name: string): Upstream | undefined {
    return this.upstreams.get(name);
  }

  all(): Upstream[] {
    return [...this.upstreams.values()];
  }

  timeoutMs(name: string): number {
    return this.timeouts.get(name) ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  }

  /**
   * Gathers one list from every capable upstream (all pages). With `namespaceNames` (prompts), names get the
   * `<upstream>__` prefix unless the upstream is configured with `namespace: false`; a name an earlier upstream
   * already exposes is left out, and where each name goes is learned for `ownerOfName`.
   */
  async collect(method: string, key: string, capability: string, options: CollectOptions = {}): Promise<Record<string, unknown>[]> {
    const lists = await Promise.all(
      this.ready(capability).map(async (upstream) => {
        try {
          const items = await listAllPages(upstream, method, key, this.timeoutMs(upstream.name));
          this.learnOwners(upstream.name, method, items);
          return { upstream, items };
        } catch (err) {
          this.log.warn(`${method} failed on ${upstream.name}: ${(err as Error).message}`);
          return { upstream, items: undefined };
        }
      }),
    );
    const { keep } = options;
    if (!options.namespaceNames) return lists.flatMap(({ upstream, items }) => (keep ? (items ?? []).filter((item) => keep(upstream.name, item)) : (items ?? [])));
    const out: Record<string, unknown>[] = [];
    const seen = new Map<string, string>();
    for (const { upstream, items } of lists) {
      if (!items) continue; // a failed list keeps what was learned from the last one
      for (const [exposed, owner] of this.nameOwners) if (owner.server === upstream.name) this.nameOwners.delete(exposed);
      for (const item of items) {
        const name = String(item.name);
        const exposed = exposedName(upstream.name, name, this.isNamespaced(upstream.name));
        const taken = seen.get(exposed);
        if (taken) {
          const collision = `${name} of ${upstream.name} collides with ${exposed} of ${taken}; it is not listed`;
          if (!this.reportedCollisions.has(collision)) this.log.warn(collision);
          this.reportedCollisions.add(collision);
          continue;
        }
        seen.set(exposed, upstream.name);
        this.nameOwners.set(exposed, { server: upstream.name, name });
        if (keep && !keep(upstream.name, item)) continue;
        out.push(exposed === name ? item : { ...item, name: exposed });
      }
    }
    return out;
  }

  /** Whether this upstream's names carry the `<upstream>__` prefix (unless configured `namespace: false`). */
  isNamespaced(name: string): boolean {
    return !this.unprefixed.has(name);
  }

  /** The upstream and own name behind a prompt name a client used: learned from the lists, else by its prefix. */
  async ownerOfName(name: string): Promise<{ upstream: Upstream; name: string } | undefined> {
    const known = this.knownOwner(name) ?? splitNamespaced(name, this);
    if (known || this.unprefixed.size === 0) return known;
    await this.collect('prompts/list', 'prompts', 'prompts', { namespaceNames: true });
    return this.knownOwner(name);
  }

  private knownOwner(name: string): { upstream: Upstream; name: string } | undefined {
    const owner = this.nameOwners.get(name);
    const upstream = owner && this.upstreams.get(owner.server);
    return upstream ? { upstream, name: owner.name } : undefined;
  }

  /** The upstream serving a resource URI: a listed resource, then a matching template, then the only candidate. */
  async ownerOfUri(uri: string): Promise<Upstream | undefined> {
    const known = this.uriOwners.get(uri) ?? this.templates.find((t) => t.pattern.test(uri))?.server;
    if (known) return this.upstreams.get(known);
    await Promise.all([this.collect('resources/list', 'resources', 'resources'), this.collect('resources/templates/list', 'resourceTemplates', 'resources')]);
    const learned = this.uriOwners.get(uri) ?? this.templates.find((t) => t.pattern.test(uri))?.server;
    if (learned) return this.upstreams.get(learned);
    const capable = this.ready('resources');
    return capable.length === 1 ? capable[0] : undefined;
  }

  /**
   * Makes the upstreams log at least as verbosely as `level`. They are shared by every session, so the most
   * verbose level any session asked for wins, and each session's own level is applied when logs are delivered.
   */
  async raiseLogLevel(level: LogLevel): Promise<void> {
    if (this.logLevel && LOG_LEVELS.indexOf(this.logLevel) <= LOG_LEVELS.indexOf(level)) return;
    this.logLevel = level;
    await this.broadcast('logging/setLevel', { level }, 'logging');
  }

  /** Sets the agreed log level again on an upstream that (re)connected. */
  async restoreLogLevel(upstream: Upstream): Promise<void> {
    if (!this.logLevel || upstream.serverCapabilities?.logging === undefined) return;
    await upstream.request('logging/setLevel', { level: this.logLevel }, { timeoutMs: 10_000 }).catch(() => undefined);
  }

  async broadcast(method: string, params: Record<string, unknown>, capability: string): Promise<void> {
    await Promise.all(this.ready(capability).map((u) => u.request(method, params, { timeoutMs: 10_000 }).catch(() => undefined)));
  }

  private ready(capability: string): Upstream[] {
    return this.all().filter((u) => u.state === 'ready' && u.serverCapabilities?.[capability] !== undefined);
  }

  private learnOwners(server: string, method: string, items: Record<string, unknown>[]): void {
    if (method === 'resources/list') {
      for (const item of items) if (typeof item.uri === 'string') this.uriOwners.set(item.uri, server);
    } else if (method === 'resources/templates/list') {
      this.templates = this.templates.filter((t) => t.server !== server);
      for (const item of items) {
        if (typeof item.uriTemplate === 'string') this.templates.push({ server, pattern: templatePattern(item.uriTemplate) });
      }
    }
  }
}

/** `<upstream>__<name>` back to the upstream and its own name (namespaced upstreams only). */
function splitNamespaced(name: string, directory: UpstreamDirectory): { upstream: Upstream; name: string } | undefined {
  const at = name.indexOf(SEPARATOR);
  if (at <= 0) return undefined;
  const upstream = directory.get(name.slice(0, at));
  return upstream && directory.isNamespaced(upstream.name) ? { upstream, name: name.slice(at + SEPARATOR.length) } : undefined;
}

/** An RFC 6570 template as a regex: each `{expression}` matches any run of characters. */
function templatePattern(template: string): RegExp {
  const source = template
    .split(/\{[^}]*\}/)
    .map((literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.+');
  return new RegExp(`^${source}$`);
}
