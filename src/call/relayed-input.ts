import type { Store } from '../ports.ts';
import type { InputRequiredResult, NormalizedCall } from '../protocol/call.ts';
import { RpcErrorCode, type JsonRpcErrorObject } from '../protocol/jsonrpc.ts';
import { digestOf } from '../protocol/digest.ts';
import type { RelayRequestState, RequestStateCodec } from '../approvals/channels/request-state.ts';
import type { JobContext } from '../protocol/job-context.ts';
import type { CatalogEntry } from './catalog.ts';

/** How long a client has to answer an upstream's input requests and retry (ms). */
const RELAY_TTL_MS = 10 * 60_000;
/** A relayed state is redeemed once: its signature is kept this long under this prefix (the Store's TTL). */
const USED_PREFIX = 'mrtr-used:';

/** What input requests need of a 2026-07-28 client's declared capabilities, by method. */
const NEEDS: Record<string, (caps: Record<string, unknown>) => boolean> = {
  'elicitation/create': (caps) => caps.elicitation !== undefined,
  'sampling/createMessage': (caps) => caps.sampling !== undefined,
  'roots/list': (caps) => caps.roots !== undefined,
};

/**
 * An upstream's `input_required`, relayed to a 2026-07-28 client: its input requests as they are, its state wrapped
 * in Gatehouse's signature and bound to the call (caller, tool and its definition, arguments) and the job. The retry
 * is checked here before anything runs: a state Gatehouse did not sign, or one for another call, or one already
 * redeemed, never reaches the upstream; the retry is then the same job, decided again, and only the answers the
 * upstream asked for go back to it with its own state.
 */
export class RelayedInput {
  constructor(
    private readonly store: Pick<Store, 'setIfAbsent'>,
    private readonly codec: () => Promise<RequestStateCodec> | undefined,
  ) {}

  /** Why a retry's relayed state may not resume this call (a JSON-RPC -32602, as any bad requestState); undefined when it may. */
  async refusal(relay: RelayRequestState, call: NormalizedCall, entry: CatalogEntry, argsDigest: string): Promise<JsonRpcErrorObject | undefined> {
    if (relay.binding !== relayBindingOf(call, entry, argsDigest)) return invalidState('binding');
    const signature = String(call.input?.requestState).split('.')[2];
    const fresh = await this.store.setIfAbsent(`${USED_PREFIX}${signature}`, relay.jobId, { ttlMs: RELAY_TTL_MS });
    return fresh ? undefined : invalidState('replayed');
  }

  /** What the retry sends the upstream: the answers to its own input requests (Gatehouse's are not its business) and its state. */
  forwarded(relay: RelayRequestState, inputResponses: Record<string, unknown> | undefined): JobContext['input'] {
    const answers = Object.fromEntries(relay.keys.filter((k) => inputResponses?.[k] !== undefined).map((k) => [k, inputResponses![k]]));
    return { ...(relay.keys.length > 0 ? { inputResponses: answers } : {}), ...(relay.upstreamState === undefined ? {} : { requestState: relay.upstreamState }) };
  }

  /**
   * The client's answer: the upstream's input requests, with Gatehouse's state. A method the client declared no
   * capability for is a tool error instead (GH_ERR_ERA_UNTRANSLATABLE): the client could not answer it.
   */
  async relay(asked: InputRequiredResult, call: NormalizedCall, entry: CatalogEntry, argsDigest: string, round: Omit<RelayRequestState, 'binding' | 'keys' | 'upstreamState' | 'expiresAt'>, now: number): Promise<InputRequiredResult | { missing: string }> {
    const requests = asked.inputRequests ?? {};
    const capabilities = call.client?.capabilities ?? {};
    const missing = Object.values(requests).find((r) => !(NEEDS[r.method]?.(capabilities) ?? true));
    if (missing) return { missing: missing.method };
    const codec = await this.codec();
    if (!codec) return { missing: 'requestState' };
    const state = codec.mintRelay({
      ...round,
      binding: relayBindingOf(call, entry, argsDigest),
      keys: Object.keys(requests),
      ...(typeof asked.requestState === 'string' ? { upstreamState: asked.requestState } : {}),
      expiresAt: now + RELAY_TTL_MS,
    });
    return { resultType: 'input_required', ...(asked.inputRequests ? { inputRequests: asked.inputRequests } : {}), requestState: state, _meta: { 'gatehouse/job': { jobId: round.jobId, round: round.round } } };
  }
}

/** The call a relayed state is bound to: who calls which tool (as defined now) with which arguments. */
function relayBindingOf(call: NormalizedCall, entry: CatalogEntry, argsDigest: string): string {
  return digestOf({ tenant: call.caller.tenant, principal: call.caller.principal, tool: entry.id, toolDigest: entry.digest, args: argsDigest });
}

function invalidState(problem: 'binding' | 'replayed'): JsonRpcErrorObject {
  return { code: RpcErrorCode.INVALID_PARAMS, message: 'Invalid or expired requestState', data: { code: 'GH_ERR_REQUEST_STATE_INVALID', problem } };
}
