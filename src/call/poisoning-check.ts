import type { DefinitionFinding } from '../protocol/definition-finding.ts';
import type { ToolDefinition } from '../protocol/mcp.ts';
import { scanDefinition } from './definition-scan.ts';

/**
 * What a gateway does with a tool definition the poisoning scan flags (`upstreams.<name>.definitionScan`):
 * `quarantine` (the default) holds the tool as a changed definition is held, `log` records and audits the findings
 * and serves the tool, `off` scans nothing.
 */
export type DefinitionScanMode = 'quarantine' | 'log' | 'off';

/** Enough distinct definitions for every upstream of a large deployment; past it the oldest are scanned again. */
const CACHE_LIMIT = 4_096;

/**
 * The poisoning scan as tool pins run it: once per definition digest (and per set of other upstreams' tool names,
 * which shadowing is judged against), not on every listing.
 */
export class PoisoningCheck {
  private readonly cache = new Map<string, DefinitionFinding[]>();

  constructor(readonly modeOf: (server: string) => DefinitionScanMode = () => 'quarantine') {}

  /**
   * The findings of one of `server`'s tools. `siblings` are the upstream's own tool names; `others` the tools of
   * every other upstream (bare name → their upstreams); `contextKey` names the two for the cache.
   */
  findings(server: string, tool: ToolDefinition, digest: string, siblings: ReadonlySet<string>, others: ReadonlyMap<string, readonly string[]>, contextKey: string): DefinitionFinding[] {
    if (this.modeOf(server) === 'off') return [];
    const key = `${digest}\u0000${contextKey}`;
    let found = this.cache.get(key);
    if (!found) {
      found = scanDefinition(tool, { siblings, others });
      if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, found);
    }
    return found;
  }
}
