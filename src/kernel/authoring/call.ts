import { z } from 'zod';
import type { DecisionInput, SessionView } from '../decision.ts';
import { annotationMatchSchema } from '../hints.ts';
import type { ToolFacts } from '../tool-facts.ts';
import { urlOrigin } from '../tool-facts.ts';
import { DEFAULT_METHOD, requestName } from '../request-kind.ts';

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

/** The session facts a call states (CEL `session`); what it leaves out reads as a session with no calls. */
const sessionSchema = z
  .strictObject({
    id: z.string().default('test-session'),
    calls: z.number().int().nonnegative().default(0),
    tools: z.array(z.string().min(1)).default([]),
    riskTags: z.array(z.string().min(1)).default([]),
    labels: z.array(z.string().min(1)).default([]),
    /** Unset: the call's `now` (the session starts with this call). */
    startedAt: instant.optional(),
    approvals: z.number().int().nonnegative().default(0),
    client: z.strictObject({ name: z.string().default(''), version: z.string().default('') }).prefault({}),
  })
  .transform((session) => session);

const namespaced = (what: string) => z.string().refine((t) => t.indexOf('__') > 0 && t.indexOf('__') + 2 < t.length, `expected a namespaced ${what} name, <server>__<${what}>`);

/**
 * A call as a policy author writes it (a test case's `call`, `policy explain --call`, the explain API's body):
 * a namespaced tool, or a resource request (`resource: <uri>` with its `server`) or a prompt request (`prompt:
 * <server>__<prompt>`), with the caller filled in with defaults. The tool facts (annotations, risk tags, labels,
 * an HTTP upstream's URL) are present only where the call states them: the rest come from the gateway's catalog
 * (see `resolveCall`).
 */
export const callSchema = z
  .strictObject({
    tool: namespaced('tool').optional(),
    resource: z.string().min(1).optional(),
    prompt: namespaced('prompt').optional(),
    /** The upstream of a resource request (a prompt's and a tool's is their name's prefix). */
    server: z.string().min(1).optional(),
    /** A request's MCP method: `resources/read` (default) or `resources/subscribe`, `prompts/get` (default), `completion/complete`. */
    method: z.enum(['resources/read', 'resources/subscribe', 'prompts/get', 'completion/complete']).optional(),
    principal: z.string().min(1).default('test'),
    tenant: z.string().min(1).default('default'),
    args: z.record(z.string(), z.unknown()).default({}),
    annotations: annotations.optional(),
    riskTags: z.array(z.string().min(1)).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    upstreamUrl: z.url({ protocol: /^https?$/, error: 'expected the http:// or https:// URL of an HTTP upstream' }).optional(),
    now: instant.optional(),
    session: sessionSchema.optional(),
  })
  .superRefine((call, ctx) => {
    const targets = [call.tool, call.resource, call.prompt].filter((t) => t !== undefined).length;
    if (targets === 0) ctx.addIssue({ code: 'custom', path: ['tool'], message: 'a call names a tool (or a resource with its server, or a prompt)' });
    if (targets > 1) ctx.addIssue({ code: 'custom', message: 'a call names one of tool, resource (with server) or prompt, not several' });
    if (call.resource !== undefined && call.server === undefined) ctx.addIssue({ code: 'custom', path: ['server'], message: 'a resource request names the upstream that serves it' });
    const kind = call.resource !== undefined ? 'resource' : call.prompt !== undefined ? 'prompt' : 'tool';
    if (call.method && !(kind === 'resource' ? ['resources/read', 'resources/subscribe', 'completion/complete'] : kind === 'prompt' ? ['prompts/get', 'completion/complete'] : []).includes(call.method)) {
      ctx.addIssue({ code: 'custom', path: ['method'], message: `${call.method} is not a method of a ${kind} request` });
    }
    if (kind !== 'tool' && (call.annotations || call.riskTags)) ctx.addIssue({ code: 'custom', message: 'annotations and riskTags are facts of tools; a resource or prompt request has none' });
  })
  .transform((call): StatedCall => {
    const common = {
      tenant: call.tenant,
      principal: call.principal,
      ...(call.annotations ? { annotations: call.annotations } : {}),
      ...(call.riskTags ? { riskTags: call.riskTags } : {}),
      ...(call.labels ? { labels: call.labels } : {}),
      ...(call.upstreamUrl ? { upstreamUrl: urlOrigin(call.upstreamUrl) } : {}),
      args: call.args,
      ...(call.now !== undefined ? { now: call.now } : {}),
      ...(call.session ? { session: { ...call.session, startedAt: call.session.startedAt ?? call.now ?? 0 } satisfies SessionView } : {}),
    };
    if (call.resource !== undefined) {
      const method = call.method ?? DEFAULT_METHOD.resource;
      return { ...common, server: call.server!, tool: requestName(method, call.resource), kind: 'resource', method, uri: call.resource };
    }
    if (call.prompt !== undefined) {
      const method = call.method ?? DEFAULT_METHOD.prompt;
      return { ...common, server: serverOf(call.prompt), tool: requestName(method, call.prompt), kind: 'prompt', method, prompt: call.prompt };
    }
    return { ...common, server: serverOf(call.tool!), tool: call.tool! };
  });

const serverOf = (name: string): string => name.slice(0, name.indexOf('__'));

/** What names a call's target in a call spec (`{ tool }`, `{ resource, server }` or `{ prompt }`), with its method. */
export function targetSpec(call: StatedCall): Record<string, unknown> {
  if (call.kind === 'resource') return { resource: call.uri, server: call.server, method: call.method };
  if (call.kind === 'prompt') return { prompt: call.prompt, method: call.method };
  return { tool: call.tool };
}

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
    // Not a fact a call can state: the live catalog's pins say whether the definition changed.
    if (facts.definitionChanged) input.definitionChanged = facts.definitionChanged;
  }
  return input;
}
