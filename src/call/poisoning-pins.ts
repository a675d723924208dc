import type { PinScan, ToolPin } from '../ports.ts';
import type { ToolDefinition } from '../protocol/mcp.ts';
import { digestOf } from '../protocol/digest.ts';

/** What one upstream's definitions are scanned against: its own tools, and every other upstream's. */
export interface PoisoningContext {
  siblings: ReadonlySet<string>;
  /** Bare tool name → the other upstreams that serve it. */
  others: ReadonlyMap<string, readonly string[]>;
  /** Names the two, for the scan's cache. */
  key: string;
}

/**
 * The context of a listing of `server`'s tools: the other upstreams' tools are those pinned (every replica's, and
 * from earlier runs) and those `known` to this gateway's catalog, not pinned yet.
 */
export function poisoningContext(server: string, tools: readonly ToolDefinition[], pins: readonly ToolPin[], known?: ReadonlyMap<string, readonly string[]>): PoisoningContext {
  const siblings = new Set(tools.filter((t) => t && typeof t.name === 'string').map((t) => t.name));
  const others = new Map<string, string[]>();
  const add = (tool: string, owner: string) => {
    if (owner === server) return;
    const owners = others.get(tool) ?? [];
    if (!owners.includes(owner)) others.set(tool, [...owners, owner]);
  };
  for (const pin of pins) add(pin.tool, pin.server);
  for (const [tool, owners] of known ?? []) for (const owner of owners) add(tool, owner);
  return { siblings, others, key: digestOf({ siblings: [...siblings].sort(), others: [...others.keys()].sort() }) };
}

/** The refusal's reason: each finding's kind and field, with the first excerpt (escaped by the scan). */
export function whyQuarantined(scan: PinScan, changed = false): string {
  const where = [...new Set(scan.findings.map((f) => `${f.kind} in ${f.field}`))].slice(0, 4).join('; ');
  const first = scan.findings[0];
  return `${changed ? 'its definition changed since it was pinned, and ' : ''}the poisoning scan flagged it (${where}: "${first.excerpt}")`;
}
