import type { ServerRequestHandler } from '../ports.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { InputRequiredResult } from '../protocol/call.ts';

/** How many times one call may ask for input before it is given up on (the SDK client's default too). */
export const MAX_INPUT_ROUNDS = 10;

export const isInputRequired = (result: Record<string, unknown>): result is InputRequiredResult => result.resultType === 'input_required';

/** What the next round of the upstream call adds to its params: the answers, and the upstream's own state. */
export interface InputRetry {
  inputResponses?: Record<string, unknown>;
  requestState?: string;
}

/**
 * One round of a 2026-07-28 upstream's `input_required`, answered for a client that is not relayed it (a 2025
 * client): each input request (elicitation, sampling, roots) becomes the same request sent to the client on its
 * session. Resolves with what the next round sends the upstream. A client that cannot be asked (none connected, or
 * it declared no capability for the method) ends the call with GH_ERR_ERA_UNTRANSLATABLE. The next round is the
 * call's business, not this function's: it is decided, recorded and dispatched like the first (src/call/pipeline.ts).
 */
export async function answerInputRequests(asked: InputRequiredResult, ask: ServerRequestHandler | undefined, signal: AbortSignal): Promise<InputRetry> {
  const requests = Object.entries(asked.inputRequests ?? {});
  const inputResponses: Record<string, unknown> = {};
  for (const [key, request] of requests) {
    if (!ask) throw untranslatable(`the upstream asked for ${request.method}, and no client can be asked on this call`);
    try {
      inputResponses[key] = await ask(request.method, request.params, signal);
    } catch (err) {
      if (isGatewayError(err) && err.code === 'GH_ERR_METHOD_NOT_FOUND') throw untranslatable(`the upstream asked for ${request.method}, which the client declared no capability for`);
      throw err;
    }
  }
  return { ...(requests.length > 0 ? { inputResponses } : {}), ...(asked.requestState === undefined ? {} : { requestState: asked.requestState }) };
}

function untranslatable(message: string): GatewayError {
  return new GatewayError('GH_ERR_ERA_UNTRANSLATABLE', message);
}
