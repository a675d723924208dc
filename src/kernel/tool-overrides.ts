import type { ToolAnnotations } from '../protocol/mcp.ts';
import type { HintName } from './hints.ts';
import type { ToolOverride } from './policy-schema.ts';

/** Per hint, the value that restricts most: a tool that may write, destroy, repeat badly or reach out. */
const STRICTEST: Record<HintName, boolean> = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true };

/**
 * Merges two overrides of the same tool (from two files, or two patterns that both match it): per hint the
 * most restrictive value, risk tags united and sorted. Commutative and associative, so file order never matters.
 */
export function mergeToolOverrides(a: ToolOverride, b: ToolOverride): ToolOverride {
  const out: ToolOverride = {};
  if (a.annotations || b.annotations) {
    const annotations: Partial<Record<HintName, boolean>> = { ...a.annotations };
    for (const [key, value] of Object.entries(b.annotations ?? {}) as [HintName, boolean][]) {
      const mine = annotations[key];
      annotations[key] = mine === undefined || mine === value ? value : STRICTEST[key];
    }
    out.annotations = annotations;
  }
  if (a.riskTags || b.riskTags) out.riskTags = [...new Set([...(a.riskTags ?? []), ...(b.riskTags ?? [])])].sort();
  return out;
}

/** The declared annotations with the bundle's override on top: a hint the override sets replaces the tool's own. */
export function overriddenAnnotations(declared: ToolAnnotations | undefined, override: ToolOverride | undefined): ToolAnnotations | undefined {
  return override?.annotations ? { ...declared, ...override.annotations } : declared;
}
