import type { Upstream } from '../ports.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import type { Logger } from '../log.ts';
import type { ToolDefinition } from '../protocol/mcp.ts';
import type { ToolFacts, ToolFactsOf } from '../kernel/tool-facts.ts';
import { digestOf } from '../protocol/digest.ts';
import { compileArgumentCheck, type ArgumentCheck } from './argument-validator.ts';
import { exposedName, namespacedName, SEPARATOR } from './tool-names.ts';
import { errorResult } from '../protocol/tool-results.ts';
import { listAllPages } from './list-pages.ts';
import { BUILTIN_TOOL_NAMES } from '../approvals/channels/builtin-tools.ts';
import type { PinReview, ToolPins } from './tool-pins.ts';

export interface CatalogEntry {
  /** What clients call it: `<server>__<tool>`, or the tool's own name when its upstream is not namespaced. */
  name: string;
  /** `<server>__<tool>` always: what policies, approvals and the audit trail see, however the tool is exposed. */
  id: string;
  server: string;
  /** The definition as the upstream gave it. */
  tool: ToolDefinition;
  /** The definition as clients see it (exposed name). */
  exposed: ToolDefinition;
  /** sha256 of the upstream's definition, pinned into jobs and approvals. */
  digest: string;
  /** What the kernel decides on about this tool: its annotations after config overrides, risk tags, labels. */
  facts: ToolFacts;
  /** Validates arguments against the inputSchema; compiled on first use. */
  check(args: Record<string, unknown>): string | undefined;
  /** Set for a request other than a tool call that is governed like one (see governed-requests.ts). */
  request?: UpstreamRequest;
}

/** A resource, prompt or completion request as a job runs it: what the kernel sees, and what the upstream is sent. */
export interface UpstreamRequest {
  kind: 'resource' | 'prompt';
  method: string;
  /** The resource's URI, or the namespaced prompt name. */
  target: string;
  /** The params the upstream receives (its own prompt name), without `_meta`. */
  params: Record<string, unknown>;
  /**
   * Set when the upstream need not be asked (it already holds this subscription for another session): the
   * request is decided and audited, and answered with this.
   */
  answered?: Record<string, unknown>;
}

export type { ToolFacts, ToolFactsOf };

const asDeclared: ToolFactsOf = (_server, tool) => ({ annotations: tool.annotations, riskTags: [], labels: {} });

const LIST_TIMEOUT_MS = 30_000;
const NO_TOOL: ToolDefinition = { name: '', inputSchema: { type: 'object' } };

/**
 * The aggregated tool list: every upstream's tools under namespaced names (or their own names, for an upstream
 * configured with `namespace: false`), with each definition pinned by digest. A definition that changes under
 * the same name is held to the definition pinned first (see tool-pins.ts; both runtimes have pins, unit tests
 * may leave them out and get the new definition): a quarantined tool is not listed, and a call to it is refused; a changed tool of an
 * `onDefinitionChange: approve` upstream is listed as it is now, with the change in its facts (the kernel then puts
 * each call before a human). A name another upstream already exposes, or one of
 * Gatehouse's own tools (`gatehouse_approval_status`, `gatehouse_approval_wait`), is not listed.
 */
export class ToolCatalog {
  private readonly byName = new Map<string, CatalogEntry>();
  private readonly byServer = new Map<string, CatalogEntry[]>();
  private readonly listeners = new Set<() => void>();
  private readonly refreshing = new Map<string, Promise<void>>();
  /** Quarantined tools by exposed name: not listed, refused with GH_ERR_TOOL_QUARANTINED until accepted. */
  private readonly held = new Map<string, CatalogEntry>();
  /** Changed tools of `onDefinitionChange: approve` upstreams by exposed name: listed, each call put before a human. */
  private readonly approving = new Map<string, CatalogEntry>();

  constructor(
    private readonly log: Logger,
    private readonly isNamespaced: (server: string) => boolean = () => true,
    private readonly factsOf: ToolFactsOf = asDeclared,
    /** The configured upstreams by name: a call to one whose tools were never listed says why it is down. */
    private readonly upstreamOf: (server: string) => Upstream | undefined = () => undefined,
    /** Every configured upstream's name: an unprefixed tool name may belong to one configured `namespace: false`. */
    private readonly upstreamNames: () => Iterable<string> = () => [],
    /** Where definitions are pinned; without it (unit tests), a changed definition is taken as it is. */
    private readonly pins?: ToolPins,
  ) {}

  resolve(name: string): CatalogEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * The answer to a call of a name that resolves to nothing: GH_ERR_TOOL_QUARANTINED for a tool held back since its
   * definition changed; GH_ERR_UPSTREAM_UNAVAILABLE, naming the upstream and why, when a configured upstream never
   * listed its tools (it did not come up), as a call to one that went down gets, rather than "unknown tool".
   * Undefined for a name no upstream could serve.
   */
  unavailable(name: string): CallToolResult | undefined {
    const held = this.held.get(name);
    if (held) {
      const why = this.pins?.whyHeld(held.id) ?? 'its definition changed since it was pinned';
      return errorResult('GH_ERR_TOOL_QUARANTINED', `${name} is quarantined: ${why}. It is not called until an operator accepts it (gatehouse tools diff ${held.id}; gatehouse tools accept ${held.id}).`, undefined, { remediation: `gatehouse tools accept ${held.id}` });
    }
    const at = name.indexOf(SEPARATOR);
    const server = at > 0 ? name.slice(0, at) : '';
    const upstream = this.upstreamOf(server);
    if (upstream && this.isNamespaced(server)) {
      if (this.byServer.has(server)) return undefined;
      return errorResult('GH_ERR_UPSTREAM_UNAVAILABLE', `${name} cannot be called: upstream ${server} has not listed its tools, as ${whyDown(upstream)}. Try again once it is up.`, undefined, {
        upstream: server,
        ...(upstream.failure?.stderr ? { stderr: upstream.failure.stderr } : {}),
      });
    }
    // A name without a listed owner may be a tool of an upstream exposed under its own names that never listed them.
    const silent = [...this.upstreamNames()].filter((s) => !this.isNamespaced(s) && !this.byServer.has(s)).map((s) => this.upstreamOf(s)).filter((u) => u !== undefined);
    if (silent.length === 0) return undefined;
    const which = silent.map((u) => `${u.name} (${whyDown(u)})`).join('; ');
    return errorResult('GH_ERR_UPSTREAM_UNAVAILABLE', `${name} is no tool of the upstreams that are up; it may be one of ${which}, configured with namespace: false, whose tools are not listed yet. Try again once it is up.`, undefined, {
      upstream: silent.map((u) => u.name).join(', '),
      ...(silent.length === 1 && silent[0].failure?.stderr ? { stderr: silent[0].failure.stderr } : {}),
    });
  }

  /** The facts of a request other than a tool call: its upstream's labels and URL, and no tool facts. */
  upstreamFacts(server: string): ToolFacts {
    const { labels, upstreamUrl } = this.factsOf(server, NO_TOOL);
    return { annotations: undefined, riskTags: [], labels, ...(upstreamUrl ? { upstreamUrl } : {}) };
  }

  entries(): CatalogEntry[] {
    return [...this.byName.values()];
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Releases the quarantined tools whose definition an operator has accepted since (another process may have: the
   * CLI, another replica's API), and settles the changed tools held for approval (accepted: no approval needed any
   * more; rejected: quarantined). Costs nothing while no tool is held; called before a listing (every held tool),
   * and on a call to an unknown name or to a tool held for approval (`name`: only that tool, one pin read).
   */
  async recheck(name?: string): Promise<void> {
    if (!this.pins || (this.held.size === 0 && this.approving.size === 0)) return;
    const only = <T>(entries: Map<string, T>): [string, T][] => (name === undefined ? [...entries] : entries.has(name) ? [[name, entries.get(name)!]] : []);
    let listChanged = false;
    for (const [name, entry] of only(this.held)) {
      if ((await this.pins.standing(entry.server, entry.tool.name, entry.digest)) !== 'pinned' || this.held.get(name) !== entry || this.byName.has(name)) continue;
      this.held.delete(name);
      this.serve(released(entry));
      this.log.info(`${name} was accepted; it is listed again`);
      listChanged = true;
    }
    for (const [name, entry] of only(this.approving)) {
      const standing = await this.pins.standing(entry.server, entry.tool.name, entry.digest);
      if (standing === 'changed' || this.approving.get(name) !== entry || this.byName.get(name) !== entry) continue;
      this.approving.delete(name);
      this.unserve(entry);
      if (standing === 'pinned') {
        this.serve(released(entry));
        this.log.info(`${name} was accepted; its calls no longer need an approval for the change`);
      } else {
        this.held.set(name, entry);
        this.log.warn(`the change of ${name} was rejected; it is quarantined`);
        listChanged = true;
      }
    }
    if (listChanged) for (const listener of this.listeners) listener();
  }

  private serve(entry: CatalogEntry): void {
    this.byName.set(entry.name, entry);
    this.byServer.set(entry.server, [...(this.byServer.get(entry.server) ?? []), entry]);
  }

  private unserve(entry: CatalogEntry): void {
    this.byName.delete(entry.name);
    this.byServer.set(entry.server, (this.byServer.get(entry.server) ?? []).filter((e) => e !== entry));
  }

  /** Re-reads one upstream's tools (all pages). A failure leaves its previous tools in place. */
  refresh(upstream: Upstream): Promise<void> {
    // One refresh at a time per upstream, in order: an older listing can never overwrite a newer one.
    const next = (this.refreshing.get(upstream.name) ?? Promise.resolve()).catch(() => undefined).then(() => this.refreshNow(upstream));
    this.refreshing.set(upstream.name, next);
    return next;
  }

  /** Resolves once the refreshes of this upstream asked for so far are done (whether they worked or not). */
  async settled(server: string): Promise<void> {
    await this.refreshing.get(server)?.catch(() => undefined);
  }

  private async refreshNow(upstream: Upstream): Promise<void> {
    if (!upstream.serverCapabilities?.tools) {
      this.replace(upstream.name, []);
      return;
    }
    const tools = await listAllPages<ToolDefinition>(upstream, 'tools/list', 'tools', LIST_TIMEOUT_MS);
    this.replace(upstream.name, tools, this.pins ? await this.pins.review(upstream.name, tools, this.otherTools(upstream.name)) : undefined);
  }

  /** The tools the other upstreams listed (held ones too), by bare name: what the poisoning scan's shadowing check knows. */
  private otherTools(server: string): Map<string, string[]> {
    const known = new Map<string, string[]>();
    for (const entry of [...this.byName.values(), ...this.held.values()]) {
      if (entry.server !== server) known.set(entry.tool.name, [...(known.get(entry.tool.name) ?? []), entry.server]);
    }
    return known;
  }

  private replace(server: string, tools: ToolDefinition[], review?: PinReview): void {
    for (const old of this.byServer.get(server) ?? []) this.byName.delete(old.name);
    for (const held of [this.held, this.approving]) for (const [name, entry] of [...held]) if (entry.server === server) held.delete(name);
    const entries: CatalogEntry[] = [];
    const previous = new Map((this.byServer.get(server) ?? []).map((e) => [e.tool.name, e.digest]));
    for (const tool of tools) {
      if (!tool || typeof tool.name !== 'string') continue;
      const name = exposedName(server, tool.name, this.isNamespaced(server));
      if (BUILTIN_TOOL_NAMES.has(name)) {
        this.log.warn(`tool ${tool.name} of ${server} takes the name of a tool Gatehouse serves itself; it is not listed`);
        continue;
      }
      const taken = this.byName.get(name);
      if (taken) {
        this.log.warn(`tool ${tool.name} of ${server} collides with ${name} of ${taken.server}; it is not listed`);
        continue;
      }
      const change = review?.approve.get(tool.name);
      const facts = this.factsOf(server, tool);
      const entry = makeEntry(server, name, tool, change ? { ...facts, definitionChanged: change } : facts);
      if (change) {
        this.log.warn(`the definition of ${name} changed since it was pinned; each call needs an approval until it is accepted`, { current: entry.digest });
        this.approving.set(name, entry);
      }
      if (review?.quarantined.has(tool.name)) {
        this.log.warn(`${name} is quarantined: ${this.pins?.whyHeld(entry.id)}`, { current: entry.digest });
        this.held.set(name, entry);
        continue;
      }
      this.byName.set(name, entry);
      entries.push(entry);
    }
    this.byServer.set(server, entries);
    // Clients hear of a change only when there is one, not on every reconnect of the upstream.
    const unchanged = entries.length === previous.size && entries.every((e) => previous.get(e.tool.name) === e.digest);
    if (!unchanged) for (const listener of this.listeners) listener();
  }
}

/** The entry once its definition is the pinned one: the same, without the change the kernel holds calls for. */
function released(entry: CatalogEntry): CatalogEntry {
  if (!entry.facts.definitionChanged) return entry;
  const { definitionChanged: _accepted, ...facts } = entry.facts;
  return makeEntry(entry.server, entry.name, entry.tool, facts);
}

function makeEntry(server: string, name: string, tool: ToolDefinition, facts: ToolFacts): CatalogEntry {
  let check: ArgumentCheck | undefined | null = null;
  return {
    name,
    id: namespacedName(server, tool.name),
    server,
    tool,
    // Clients see the operator's annotations too: a client that asks before destructive calls should know.
    exposed: facts.annotations === tool.annotations ? { ...tool, name } : { ...tool, name, annotations: facts.annotations },
    digest: digestOf(tool),
    facts,
    check(args) {
      if (check === null) check = compileArgumentCheck(tool.inputSchema ?? { type: 'object' });
      return check?.(args);
    },
  };
}

/** Why an upstream has not listed its tools, for the model and the log. */
function whyDown(upstream: Upstream): string {
  const { failure } = upstream;
  return upstream.state === 'ready' ? 'it is up, but its tools could not be listed' : `it is ${upstream.state}${failure ? `: ${failure.message}` : ''}`;
}
