import type { ClientFacts, NormalizedCall } from '../protocol/call.ts';
import type { ClientSession } from './session.ts';

/**
 * What a call knows of the client that makes it (its era, what it declared it can answer, its name), and on a
 * 2026-07-28 retry the answers and state it sent back: the `client` and `input` of a NormalizedCall.
 */
export function clientFactsOf(session: ClientSession, params: Record<string, unknown>): Pick<NormalizedCall, 'client' | 'input'> {
  const client: ClientFacts = { era: session.era, capabilities: session.capabilities, ...(session.clientInfo ? { name: session.clientInfo.name, version: session.clientInfo.version } : {}) };
  const { requestState, inputResponses } = params;
  if (requestState === undefined && inputResponses === undefined) return { client };
  return { client, input: { requestState, ...(isObject(inputResponses) ? { inputResponses: inputResponses as Record<string, unknown> } : {}) } };
}

const isObject = (value: unknown): boolean => value !== null && typeof value === 'object' && !Array.isArray(value);
