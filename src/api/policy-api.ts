import type { FastifyInstance } from 'fastify';
import type { Kernel } from '../kernel/kernel.ts';
import { GatewayError } from '../errors.ts';
import { callSchema, resolveCall, type StatedCall } from '../kernel/authoring/call.ts';
import { explainedJson, type ExplainedCall } from '../kernel/authoring/explain-format.ts';
import { factsNote } from '../kernel/authoring/facts-source.ts';
import { explainCall } from '../kernel/verdict.ts';
import type { ToolFacts } from '../call/catalog.ts';
import { readBody, serveJson } from './api.ts';
import type { Approver } from './access.ts';
import { APPROVER_API, type ApproverContext } from './context.ts';

/**
 * The policy author's tools over HTTP, for the people who already act on approvals (an approver key, or the
 * local user): the bundle in force, and `explain` for one call, as `gatehouse policy explain --json` prints it.
 * A call is explained within the approver's own tenant, at the present time unless it says otherwise, on the
 * tool facts of the live catalog (where the call states none) and through the verdict function the live
 * gateway decides with, so the answer is the live one.
 */
export function registerPolicyApi(app: FastifyInstance, ctx: ApproverContext, kernel: Pick<Kernel, 'bundle' | 'explain'>, toolFacts: (call: StatedCall) => ToolFacts | undefined): void {
  const route = { config: { approver: APPROVER_API } };

  app.get('/api/policy', route, (request, reply) =>
    serveJson(ctx, request, reply, async () => {
      const { snapshot, files, rules, packs } = kernel.bundle;
      const shownRules = rules.map((r) => ({ id: r.id, effect: r.effect, ...(r.description ? { description: r.description } : {}) }));
      // The packs whose rules and tool facts the snapshot includes: name, version, digest and the upstream they apply to.
      return { policy: { snapshot, files, default: kernel.bundle.default, rules: shownRules, ...(packs ? { packs } : {}) } };
    }),
  );

  app.post('/api/policy/explain', route, (request, reply) =>
    serveJson(ctx, request, reply, async (approver) => explainedJson(explainStated(approver, readBody(request), kernel, toolFacts, ctx.now()))),
  );
}

/**
 * One call a user states (the API's JSON body, the console's form), explained within the user's own tenant, at
 * `now` unless it says otherwise, on the live catalog's tool facts where it states none.
 */
export function explainStated(user: Pick<Approver, 'tenant'>, body: Record<string, unknown>, kernel: Pick<Kernel, 'explain'>, toolFacts: (call: StatedCall) => ToolFacts | undefined, now: number): ExplainedCall {
  const parsed = callSchema.safeParse({ tenant: user.tenant, ...body });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GatewayError('GH_ERR_INVALID_REQUEST', `${issue.path.join('.') || 'the call'}: ${issue.message}`);
  }
  const call = parsed.data;
  if (call.tenant !== user.tenant) throw new GatewayError('GH_ERR_FORBIDDEN', `you may explain calls in tenant ${user.tenant} only`);
  const facts = toolFacts(call);
  const input = resolveCall({ ...call, now: call.now ?? now }, facts);
  const { explanation, verdict } = explainCall(kernel, input);
  return { input, explanation, verdict, facts: factsNote(call, facts !== undefined, { from: 'catalog' }, `${call.tool} is not in the gateway's catalog`) };
}
