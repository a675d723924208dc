import type { ToolAnnotations } from '../protocol/mcp.ts';
import type { Constraints } from './constraints.ts';
import type { Effect } from './effect.ts';

/** What the kernel decides on: the whole call, not just the tool's name. */
export interface DecisionInput {
  tenant: string;
  principal: string;
  /** The upstream's name. */
  server: string;
  /** The namespaced tool name, `<server>__<tool>`. */
  tool: string;
  annotations: ToolAnnotations | undefined;
  /** The call's arguments; undefined when deciding whether to list a tool at all. */
  args: Record<string, unknown> | undefined;
}

export interface Decision {
  effect: Effect;
  reason: string;
  /** The ids of every rule that matched, strictest first. Empty when the default applied. */
  ruleIds: string[];
  policySnapshot: string;
  constraints: Constraints;
}
