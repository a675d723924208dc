import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PinDecisions } from '../call/pin-desk.ts';
import { GatewayError } from '../errors.ts';
import { hasRole, type Approver } from './access.ts';
import { readBody, serveJson } from './api.ts';
import { APPROVER_API, type ApproverContext } from './context.ts';

/**
 * The pinned tool definitions over HTTP, as `gatehouse tools` shows and decides them: the pins and one tool's change
 * for any console role, accept and reject for admins only (a definition accepted is what every later call of every
 * tenant runs against, as a config change would be). Accept and reject take no form body, only JSON or none, so no
 * cross-site form can post them (as the approvals API); `{ digest }` binds the decision to the change reviewed.
 * Each is audited with the principal who decided.
 */
export function registerToolPinsApi(app: FastifyInstance, ctx: ApproverContext, pins: PinDecisions | undefined): void {
  const route = { config: { approver: APPROVER_API } };
  const desk = (): PinDecisions => {
    if (!pins) throw new GatewayError('GH_ERR_NOT_IMPLEMENTED', 'this gateway keeps no pins');
    return pins;
  };
  const toolOf = (request: FastifyRequest) => (request.params as { tool: string }).tool;

  app.get('/api/tools/pins', route, (request, reply) => serveJson(ctx, request, reply, async () => ({ pins: await desk().list() }), 'reader'));
  app.get('/api/tools/pins/:tool', route, (request, reply) => serveJson(ctx, request, reply, async () => ({ pin: await desk().change(toolOf(request)) }), 'reader'));
  for (const decision of ['accept', 'reject'] as const) {
    app.post(`/api/tools/pins/:tool/${decision}`, route, (request, reply) =>
      serveJson(ctx, request, reply, async (approver) => {
        const { digest } = readBody(request);
        if (digest !== undefined && typeof digest !== 'string') throw new GatewayError('GH_ERR_INVALID_REQUEST', 'digest: the sha256:<hex> of the change reviewed');
        const pin = await decidePin(desk(), approver, toolOf(request), decision, digest);
        return { pin: await desk().change(toolOf(request)), decided: { decision, by: approver.principal, digest: pin.digest } };
      }),
    );
  }
}

/** An admin's accept or reject (API and console), of the change with digest `seen` if given; GH_ERR_FORBIDDEN below admin. */
export function decidePin(pins: PinDecisions, user: Approver, tool: string, decision: 'accept' | 'reject', seen?: string) {
  if (!hasRole(user.role, 'admin')) throw new GatewayError('GH_ERR_FORBIDDEN', `accepting or rejecting a tool definition takes the admin role; ${user.principal} has ${user.role}`);
  return pins.decide(tool, decision, user.principal, seen);
}
