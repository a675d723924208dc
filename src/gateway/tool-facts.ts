import type { GatehouseConfig } from '../config/schema.ts';
import type { ToolFacts, ToolFactsOf } from './catalog.ts';

/**
 * The config's view of each upstream tool: the upstream's annotations with the operator's overrides on top
 * (annotations are the server's claims, not trust), plus the declared risk tags and the upstream's labels.
 */
export function toolFactsFromConfig(config: GatehouseConfig): ToolFactsOf {
  return (server, tool): ToolFacts => {
    const upstream = config.upstreams[server];
    const override = upstream?.tools?.[tool.name];
    const annotations = override?.annotations ? { ...tool.annotations, ...override.annotations } : tool.annotations;
    return { annotations, riskTags: override?.riskTags ?? [], labels: upstream?.labels ?? {} };
  };
}
