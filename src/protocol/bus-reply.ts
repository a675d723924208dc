/** What answers a request on the bus (the Bus port's BusResponder). */
type Responder = (body: unknown, subject: string) => Promise<unknown>;
import { ERROR_CATALOGUE, asGatewayError, GatewayError, type ErrorCode } from '../errors.ts';

/**
 * The body of an answer on the bus's request/reply channel: a value, or the responder's coded error. Every Bus
 * adapter answers and unwraps through these two functions, so a thrown GatewayError crosses the bus intact.
 */
export type BusReply = { ok: unknown } | { error: { code: string; message: string; data?: Record<string, unknown> } };

export async function answer(handler: Responder, body: unknown, subject: string): Promise<BusReply> {
  try {
    return { ok: (await handler(body, subject)) ?? null };
  } catch (err) {
    const error = asGatewayError(err);
    return { error: { code: error.code, message: error.message, ...(error.data ? { data: error.data } : {}) } };
  }
}

/** The value of a reply, or throws the responder's error as a GatewayError. */
export function unwrapReply(reply: unknown, subject: string): unknown {
  if (reply !== null && typeof reply === 'object' && 'ok' in reply) return reply.ok;
  if (reply !== null && typeof reply === 'object' && 'error' in reply) {
    const { code, message, data } = (reply as { error: { code: string; message: string; data?: Record<string, unknown> } }).error;
    const known = Object.hasOwn(ERROR_CATALOGUE, code) ? (code as ErrorCode) : 'GH_ERR_INTERNAL';
    throw new GatewayError(known, message, data ? { data } : {});
  }
  throw new GatewayError('GH_ERR_WIRE_INVALID', `the answer on ${subject} is not a bus reply`);
}
