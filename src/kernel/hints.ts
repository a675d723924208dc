import { z } from 'zod';
import type { ToolAnnotations } from '../protocol/mcp.ts';

/**
 * The risk tags a tool's annotations imply, read as the kernel reads hints (see `effectiveHint`): `read` or
 * `write`, `destructive` when declared so, `open-world` unless declared closed. The one derivation: the kernel
 * matches `match.riskTags` on these (plus declared tags), and the job metadata should carry the same.
 */
export function impliedRiskTags(annotations: ToolAnnotations | undefined): string[] {
  const tags = [effectiveHint(annotations, 'readOnlyHint') ? 'read' : 'write'];
  if (effectiveHint(annotations, 'destructiveHint') === true) tags.push('destructive');
  if (effectiveHint(annotations, 'openWorldHint')) tags.push('open-world');
  return tags;
}

export type HintName = 'readOnlyHint' | 'destructiveHint' | 'idempotentHint' | 'openWorldHint';

/** Any of the four hints, each a boolean: how policies match them and how config and policies override them. */
export const annotationMatchSchema = z.strictObject({
  readOnlyHint: z.boolean().optional(),
  destructiveHint: z.boolean().optional(),
  idempotentHint: z.boolean().optional(),
  openWorldHint: z.boolean().optional(),
});

/**
 * A hint the tool does not declare takes its MCP default (readOnly false, idempotent false, openWorld true),
 * except destructiveHint, which counts only when declared: its MCP default (true) would put every
 * unannotated tool behind an approval.
 */
export function effectiveHint(annotations: ToolAnnotations | undefined, key: HintName): boolean | undefined {
  const declared = annotations?.[key];
  if (declared !== undefined) return declared;
  if (key === 'readOnlyHint' || key === 'idempotentHint') return false;
  if (key === 'openWorldHint') return true;
  return undefined;
}
