import { z } from 'zod';
import type { DecisionInput } from '../kernel/decision.ts';
import { annotationMatchSchema } from '../kernel/hints.ts';

const annotations = annotationMatchSchema.extend({ title: z.string().optional() });

/** A time as ms since the epoch, or an ISO 8601 date/time. */
const instant = z.union([
  z.number().int().nonnegative(),
  z.string().transform((text, ctx) => {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: `expected an ISO date/time such as 2025-06-01T09:00:00Z, got ${JSON.stringify(text)}` });
      return z.NEVER;
    }
    return ms;
  }),
]);

/**
 * A call as a policy author writes it (a test case's `call`, or `policy explain --call`): the namespaced tool,
 * with the caller and the facts the gateway would supply filled in with defaults.
 */
export const callSchema = z
  .strictObject({
    tool: z.string().refine((t) => t.indexOf('__') > 0 && t.indexOf('__') + 2 < t.length, 'expected a namespaced tool name, <server>__<tool>'),
    principal: z.string().min(1).default('test'),
    tenant: z.string().min(1).default('default'),
    args: z.record(z.string(), z.unknown()).default({}),
    annotations: annotations.optional(),
    riskTags: z.array(z.string().min(1)).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    now: instant.optional(),
  })
  .transform(
    (call): DecisionInput => ({
      tenant: call.tenant,
      principal: call.principal,
      server: call.tool.slice(0, call.tool.indexOf('__')),
      tool: call.tool,
      annotations: call.annotations,
      ...(call.riskTags ? { riskTags: call.riskTags } : {}),
      ...(call.labels ? { labels: call.labels } : {}),
      args: call.args,
      ...(call.now !== undefined ? { now: call.now } : {}),
    }),
  );

export type CallSpec = z.input<typeof callSchema>;
