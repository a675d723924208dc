import { z } from 'zod';
import type { DecisionInput } from '../kernel/decision.ts';
import { annotationMatchSchema } from '../kernel/hints.ts';
import type { ToolFacts } from '../gateway/catalog.ts';
import { urlOrigin } from '../gateway/tool-facts.ts';

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
 * A call as a policy author writes it (a test case's `call`, `policy explain --call`, the explain API's body):
 * the namespaced tool, with the caller filled in with defaults. The tool facts (annotations, risk tags, labels,
 * an HTTP upstream's URL) are present only where the call states them: the rest come from the gateway's catalog
 * (see `resolveCall`).
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
    upstreamUrl: z.url({ protocol: /^https?$/, error: 'expected the http:// or https:// URL of an HTTP upstream' }).optional(),
    now: instant.optional(),
  })
  .transform(
    (call): StatedCall => ({
      tenant: call.tenant,
      principal: call.principal,
      server: call.tool.slice(0, call.tool.indexOf('__')),
      tool: call.tool,
      ...(call.annotations ? { annotations: call.annotations } : {}),
      ...(call.riskTags ? { riskTags: call.riskTags } : {}),
      ...(call.labels ? { labels: call.labels } : {}),
      ...(call.upstreamUrl ? { upstreamUrl: urlOrigin(call.upstreamUrl) } : {}),
      args: call.args,
      ...(call.now !== undefined ? { now: call.now } : {}),
    }),
  );

export type CallSpec = z.input<typeof callSchema>;

/** A call with the facts it states, and no others: a DecisionInput once `resolveCall` has filled in the rest. */
export type StatedCall = Omit<DecisionInput, 'annotations'> & Partial<Pick<DecisionInput, 'annotations'>>;

const FACTS = ['annotations', 'riskTags', 'labels', 'upstreamUrl'] as const;

/** The facts a call states itself (which win over the catalog's). */
export const statedFacts = (call: StatedCall): (typeof FACTS)[number][] => FACTS.filter((key) => call[key] !== undefined);

/**
 * The call with the tool's facts from a catalog (the gateway's live one, or the one it recorded) where the call
 * states none: each fact the call states wins whole (stated annotations replace the catalog's, not merge).
 */
export function resolveCall(call: StatedCall, facts: ToolFacts | undefined): DecisionInput {
  const input: DecisionInput = { annotations: facts?.annotations, ...call };
  if (facts) {
    if (call.riskTags === undefined && facts.riskTags.length > 0) input.riskTags = facts.riskTags;
    if (call.labels === undefined && Object.keys(facts.labels).length > 0) input.labels = facts.labels;
    if (call.upstreamUrl === undefined && facts.upstreamUrl) input.upstreamUrl = facts.upstreamUrl;
  }
  return input;
}
