import type { ToolAnnotations } from '../protocol/mcp.ts';
import type { PolicyBundle } from './bundle.ts';
import type { PolicyRule } from './policy-schema.ts';
import { compileGlob } from './glob.ts';
import type { Constraints } from './constraints.ts';
import type { Effect } from './effect.ts';

export interface CompiledRule {
  id: string;
  effect: Effect;
  reason: string | undefined;
  constraints: Constraints;
  matchesServer(server: string): boolean;
  matchesTool(tool: string): boolean;
  matchesAnnotations(annotations: ToolAnnotations | undefined): boolean;
}

export interface CompiledPolicy {
  bundle: PolicyBundle;
  /** The rules that can apply to one namespaced tool, computed once per tool name. */
  candidatesFor(server: string, tool: string): readonly CompiledRule[];
}

/** Compiles a bundle once: globs become matchers, and candidate rules are memoised per tool. */
export function compilePolicy(bundle: PolicyBundle): CompiledPolicy {
  const rules = bundle.rules.map(compileRule);
  const cache = new Map<string, readonly CompiledRule[]>();
  return {
    bundle,
    candidatesFor(server, tool) {
      const key = `${server}\u0000${tool}`;
      let found = cache.get(key);
      if (!found) {
        found = rules.filter((r) => r.matchesServer(server) && r.matchesTool(tool));
        if (cache.size > 10_000) cache.clear(); // tool names come from upstreams; bound the memo anyway
        cache.set(key, found);
      }
      return found;
    },
  };
}

function compileRule(rule: PolicyRule): CompiledRule {
  const servers = rule.match.servers?.map(compileGlob);
  const tools = rule.match.tools?.map(compileGlob);
  const wanted = Object.entries(rule.match.annotations ?? {}) as [keyof ToolAnnotations, boolean][];
  return {
    id: rule.id,
    effect: rule.effect,
    reason: rule.reason,
    constraints: rule.constraints ?? {},
    matchesServer: servers ? (s) => servers.some((m) => m(s)) : () => true,
    matchesTool: tools ? (t) => tools.some((m) => m(t)) : () => true,
    matchesAnnotations: (annotations) => wanted.every(([key, value]) => effectiveHint(annotations, key) === value),
  };
}

/**
 * A hint the tool does not declare takes its MCP default (readOnly false, idempotent false, openWorld true),
 * except destructiveHint, which counts only when declared: its MCP default (true) would put every
 * unannotated tool behind an approval.
 */
function effectiveHint(annotations: ToolAnnotations | undefined, key: keyof ToolAnnotations): unknown {
  const declared = annotations?.[key];
  if (declared !== undefined) return declared;
  if (key === 'readOnlyHint' || key === 'idempotentHint') return false;
  if (key === 'openWorldHint') return true;
  return undefined;
}
