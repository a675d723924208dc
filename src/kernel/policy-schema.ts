import { z } from 'zod';
import { EFFECTS } from './effect.ts';

const globList = z.array(z.string().min(1)).min(1);

export const annotationMatchSchema = z.strictObject({
  readOnlyHint: z.boolean().optional(),
  destructiveHint: z.boolean().optional(),
  idempotentHint: z.boolean().optional(),
  openWorldHint: z.boolean().optional(),
});

export const constraintsSchema = z.strictObject({
  timeoutMs: z.number().int().positive().optional(),
  maxOutputBytes: z.number().int().positive().optional(),
});

export const ruleSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'rule ids are 1-100 letters, digits, or _ . : -'),
  description: z.string().optional(),
  match: z
    .strictObject({
      servers: globList.optional(),
      /** Globs on the namespaced tool name, `<upstream>__<tool>`. */
      tools: globList.optional(),
      /** The tool must declare each listed annotation with this value. */
      annotations: annotationMatchSchema.optional(),
    })
    .default({}),
  effect: z.enum(EFFECTS).exclude(['throttle']),
  reason: z.string().optional(),
  constraints: constraintsSchema.optional(),
});

export const policyFileSchema = z.strictObject({
  version: z.literal(1, 'expected version: 1'),
  default: z.enum(EFFECTS).exclude(['throttle']).optional(),
  rules: z.array(ruleSchema).default([]),
});

export type PolicyRule = z.output<typeof ruleSchema>;
export type PolicyFile = z.output<typeof policyFileSchema>;
