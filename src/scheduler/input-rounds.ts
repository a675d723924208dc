import type { ServerRequestHandler } from '../ports.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { InputRequiredResult } from '../protocol/call.ts';

/** How many times one call may ask for input before it is given up on (the SDK client's default too). */
export const MAX_INPUT_ROUNDS = 10;

export const isInputRequired = (result: Record<string, unknown>): result is InputRequiredResult => result.resultType === 'input_required';

/** What a retry of the upstream call adds to its params: the answers, and the upstream's own state. */
export interface InputRetry {
  inputResponses?: Record<string, unknown>;
  requestState?: string;
}

/**
 * A 2026-07-28 upstream's `input_required`, answered for a 2025 client: each input request (elicitation, sampling,
 * roots) becomes the same request sent to the client on its session, and the upstream is called again with the
 * answers and its state, until it completes. A client that cannot be asked (none connected, or it declared no
 * capability for the method) ends the call with GH_ERR_ERA_UNTRANSLATABLE; so does an upstream that keeps asking.
 */
export async function answerInputRounds(
  first: InputRequiredResult,
  ask: ServerRequestHandler | undefined,
  signal: AbortSignal,
  retry: (input: InputRetry) => Promise<Record<string, unknown>>,
): Promise<Record<string, unknown>> {
  let result: Record<string, unknown> = first;
  for (let round = 1; isInputRequired(result); round++) {
    if (round > MAX_INPUT_ROUNDS) throw untranslatable(`the upstream asked for input more than ${MAX_INPUT_ROUNDS} times in one call`);
    const requests = Object.entries(result.inputRequests ?? {});
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
    result = await retry({ ...(requests.length > 0 ? { inputResponses } : {}), ...(result.requestState === undefined ? {} : { requestState: result.requestState }) });
  }
  return result;
}

function untranslatable(message: string): GatewayError {
  return new GatewayError('GH_ERR_ERA_UNTRANSLATABLE', message);
}
