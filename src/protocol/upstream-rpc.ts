/**
 * The request/reply channel between gateways and the workers that host an upstream, for everything that is not a
 * job: describing the upstream, its lists and reads. `tools/call` never travels here; it is a CAP job.
 */
export const upstreamRpcSubject = (upstream: string): string => `gh.upstream.${upstream}.rpc`;

/**
 * Where every worker hosting an upstream says how it is, ready or not (no queue group: any of them answers). A
 * gateway asks when no worker serves the upstream, so that its banner and console name the workers' reason (the
 * SSRF guard's refusal, a process that died) rather than "no answer".
 */
export const upstreamStatusSubject = (upstream: string): string => `gh.upstream.${upstream}.status`;

export interface UpstreamStatus {
  workerId: string;
  state: 'starting' | 'ready' | 'down' | 'closed';
  failure?: { message: string; code?: string };
}

/** The queue group of the workers hosting one upstream: one of them answers each request. */
export const upstreamRpcQueue = (upstream: string): string => `hosts.${upstream}`;

export type UpstreamRpcRequest =
  | { op: 'describe' }
  | { op: 'request'; method: string; params?: Record<string, unknown>; timeoutMs: number };

export interface UpstreamDescription {
  workerId: string;
  serverCapabilities: Record<string, unknown> | undefined;
  /** The upstream's serverInfo (absent from workers of an older version). */
  serverInfo?: { name: string; version?: string };
  /** How many of each `notifications/…/list_changed` the upstream has sent on this worker: the gateway diffs them. */
  changes: Record<string, number>;
}
