import type { Upstream } from '../ports.ts';
import type { Caller } from '../protocol/call.ts';
import { RpcErrorCode, type JsonRpcErrorObject } from '../protocol/jsonrpc.ts';
import { isSignatureOf, signatureOf } from '../approvals/signing.ts';

/** The methods of the extension; `tasks/result` and `tasks/list` were removed from it (-32601, as any unknown method). */
export const TASK_METHODS: ReadonlySet<string> = new Set(['tasks/get', 'tasks/update', 'tasks/cancel']);

const VERSION = 'ght1';

type TaskOutcome = { result: Record<string, unknown> } | { error: JsonRpcErrorObject };

/** Where a signed task id points: the upstream that owns the task, and the id it gave it. */
interface TaskAddress {
  server: string;
  taskId: string;
}

/**
 * Tasks a 2026-07-28 upstream created for a client's `tools/call` (`resultType: "task"`). The client never sees the
 * upstream's task id: it gets `ght1.<body>.<mac>`, where body is the base64url of `{ s: upstream, t: its task id }`
 * and mac the HMAC of the id together with the caller's tenant and principal. So `tasks/get`, `tasks/update` and
 * `tasks/cancel` go to the upstream that owns the task (any replica can read the id: nothing is kept in memory),
 * and another caller's id fails the check and is as unknown as a made-up one (-32602). Two upstreams' task ids
 * cannot collide either: the upstream's name is inside.
 */
export class UpstreamTasks {
  constructor(
    private readonly key: () => Promise<Buffer>,
    private readonly upstreamOf: (server: string) => Upstream | undefined,
    private readonly timeoutMs: (server: string) => number,
  ) {}

  /** A `CreateTaskResult` from `server`, with the task id the caller gets instead of the upstream's. */
  async created(caller: Caller, server: string, result: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (typeof result.taskId !== 'string') return result;
    return { ...result, taskId: await this.sign(caller, { server, taskId: result.taskId }) };
  }

  /**
   * `tasks/get`, `tasks/update` or `tasks/cancel` from a client that declared the extension (`capabilities`, which
   * the upstream hears in its envelope as it would have from the client itself).
   */
  async forward(caller: Caller, method: string, params: Record<string, unknown>, capabilities: Record<string, unknown>, signal: AbortSignal): Promise<TaskOutcome> {
    const address = await this.open(caller, params.taskId);
    const upstream = address && this.upstreamOf(address.server);
    if (!address || !upstream) return { error: unknownTask(params.taskId) };
    const { _meta: _envelope, ...rest } = params;
    const answer = await upstream.request(method, { ...rest, taskId: address.taskId }, { signal, timeoutMs: this.timeoutMs(address.server), clientCapabilities: capabilities });
    // tasks/get names the task; the update and cancel acks are empty.
    return { result: typeof answer.taskId === 'string' ? { ...answer, taskId: params.taskId } : answer };
  }

  private async sign(caller: Caller, address: TaskAddress): Promise<string> {
    const body = Buffer.from(JSON.stringify({ s: address.server, t: address.taskId }), 'utf8').toString('base64url');
    return `${VERSION}.${body}.${signatureOf(await this.key(), boundText(caller, body))}`;
  }

  /** The task a client's id points at, if this caller was given it. */
  private async open(caller: Caller, taskId: unknown): Promise<TaskAddress | undefined> {
    if (typeof taskId !== 'string' || taskId.length > 4096) return undefined;
    const [version, body, mac] = taskId.split('.');
    if (version !== VERSION || !body || !isSignatureOf(await this.key(), boundText(caller, body), mac)) return undefined;
    try {
      const { s, t } = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { s?: unknown; t?: unknown };
      return typeof s === 'string' && typeof t === 'string' ? { server: s, taskId: t } : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The id is valid for its caller only: tenant and principal are signed with it (as JSON: no name can pose as two). */
const boundText = (caller: Caller, body: string): string => JSON.stringify([VERSION, body, caller.tenant, caller.principal]);

const unknownTask = (taskId: unknown): JsonRpcErrorObject => ({ code: RpcErrorCode.INVALID_PARAMS, message: `Unknown task: ${String(taskId)}`, data: { code: 'GH_ERR_TASK_UNKNOWN' } });

