import { isStdioUpstream, type GatehouseConfig } from '../config/schema.ts';
import type { ToolAnnotations, ToolDefinition } from '../protocol/mcp.ts';
import type { DefinitionChange } from './decision.ts';

/** The operator's view of a tool, which may override what the upstream claims about it. */
export interface ToolFacts {
  annotations: ToolAnnotations | undefined;
  riskTags: string[];
  labels: Record<string, string>;
  /** An HTTP upstream's URL origin, which egress constraints check (see DecisionInput.upstreamUrl). */
  upstreamUrl?: string;
  /** Set by the catalog while the tool's definition differs from its pin under `onDefinitionChange: approve`. */
  definitionChanged?: DefinitionChange;
}

/** Gives the facts of one upstream tool from its definition (the config's overrides applied). */
export type ToolFactsOf = (server: string, tool: ToolDefinition) => ToolFacts;

/**
 * The config's view of each upstream tool: the upstream's annotations with the operator's overrides on top
 * (annotations are the server's claims, not trust), plus the declared risk tags, the upstream's labels and, for
 * an HTTP upstream, its URL's origin (what egress constraints check).
 */
export function toolFactsFromConfig(config: GatehouseConfig): ToolFactsOf {
  return (server, tool): ToolFacts => {
    const upstream = config.upstreams[server];
    const override = upstream?.tools?.[tool.name];
    const annotations = override?.annotations ? { ...tool.annotations, ...override.annotations } : tool.annotations;
    const upstreamUrl = upstream && !isStdioUpstream(upstream) ? urlOrigin(upstream.url) : undefined;
    return { annotations, riskTags: override?.riskTags ?? [], labels: upstream?.labels ?? {}, ...(upstreamUrl ? { upstreamUrl } : {}) };
  };
}

/**
 * The part of an upstream's URL that egress is about, and nothing that may be secret (userinfo, a token in the
 * path or query): the facts are recorded in the data dir and the audit trail. The executor still checks the
 * whole URL before each call.
 */
export function urlOrigin(url: string): string {
  try {
    const { protocol, host } = new URL(url);
    return `${protocol}//${host}`;
  } catch {
    return url.replace(/[?#].*$/, '').replace(/\/\/[^/]*@/, '//');
  }
}
