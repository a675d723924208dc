import type { Bus, Subscription } from '../ports.ts';
import { GatewayError } from '../errors.ts';
import type { JobClientLink } from './executor.ts';

/**
 * Carries what an upstream sends while serving a job (elicitation, sampling and roots requests; logging) back to
 * the client that made the call, when the job runs in another process than the gateway replica holding that
 * client: a worker asks the replica that dispatched the job (the job packet's sender) over bus request/reply.
 * The same way, a worker asks for the job's upstream token on its caller's behalf (token exchange): the replica
 * exchanged it and answers with it alone, on core request/reply, which nothing persists (not the job's packet,
 * which JetStream may keep, nor its context in the store, nor the audit).
 */
export const jobClientSubject = (replica: string): string => `gh.replica.${replica}.jobclient`;

type RelayRequest =
  | { jobId: string; op: 'ask'; method: string; params?: Record<string, unknown>; timeoutMs: number }
  | { jobId: string; op: 'notify'; method: string; params?: Record<string, unknown> }
  | { jobId: string; op: 'credential' | 'credentialRejected' };

/** How long a worker waits for a job's exchanged token (the replica may ask the authorization server first). */
const CREDENTIAL_TIMEOUT_MS = 10_000;

/** How long a client may take to answer an upstream's request (a human filling in a form). */
const ASK_TIMEOUT_MS = 10 * 60_000;

/** The replica side: answers for the jobs whose clients it holds. */
export function serveJobClients(bus: Bus, replica: string, clientFor: (jobId: string) => JobClientLink | undefined): Subscription {
  return bus.reply(jobClientSubject(replica), async (body) => {
    const request = body as RelayRequest;
    const link = clientFor(request.jobId);
    if (request.op === 'credential') {
      // Only for a job this replica has in flight, and only the token scoped to that job's upstream.
      if (!link?.credential) throw new GatewayError('GH_ERR_CALLER_TOKEN_REQUIRED', `job ${request.jobId} has no caller token to exchange here`);
      return { authorization: await link.credential.authorization() };
    }
    if (request.op === 'credentialRejected') return void link?.credential?.rejected();
    if (request.op === 'notify') return void link?.notify(request.method, request.params);
    if (request.op !== 'ask') throw new GatewayError('GH_ERR_INVALID_REQUEST', `unknown job client operation ${String((request as { op?: unknown }).op)}`);
    if (!link?.ask) throw new Error(`the client of job ${request.jobId} cannot answer ${request.method}`);
    return link.ask(request.method, request.params, AbortSignal.timeout(request.timeoutMs));
  });
}

/** The worker side: a link to the client of a job that replica `replica` dispatched. */
export function remoteJobClient(bus: Bus, replica: string, jobId: string): JobClientLink {
  const subject = jobClientSubject(replica);
  return {
    ask: async (method, params, signal) =>
      (await bus.request(subject, { jobId, op: 'ask', method, ...(params ? { params } : {}), timeoutMs: ASK_TIMEOUT_MS } satisfies RelayRequest, { timeoutMs: ASK_TIMEOUT_MS + 1_000, signal })) as Record<string, unknown>,
    notify: (method, params) => {
      bus.request(subject, { jobId, op: 'notify', method, ...(params ? { params } : {}) } satisfies RelayRequest, { timeoutMs: 5_000 }).catch(() => undefined);
    },
    credential: {
      authorization: async () => ((await bus.request(subject, { jobId, op: 'credential' } satisfies RelayRequest, { timeoutMs: CREDENTIAL_TIMEOUT_MS })) as { authorization: string }).authorization,
      rejected: () => void bus.request(subject, { jobId, op: 'credentialRejected' } satisfies RelayRequest, { timeoutMs: 5_000 }).catch(() => undefined),
    },
  };
}
