import type { Bus, Subscription } from '../../ports.ts';
import { RpcErrorCode, type JsonRpcErrorObject } from '../../protocol/jsonrpc.ts';
import type { Caller } from '../../protocol/call.ts';
import type { CallTasks } from './tasks.ts';

/** `tasks/detailed`: a task as the 2026-07-28 extension's `tasks/get` shows it. */
type TaskMethod = 'tasks/get' | 'tasks/result' | 'tasks/cancel' | 'tasks/detailed';
type TaskOutcome = { result: Record<string, unknown> } | { error: JsonRpcErrorObject };
type RelayedRequest = { method: TaskMethod; caller: Caller; taskId: string };

/** How long a forwarded `tasks/result` may wait: as long as the longest task lives. */
const RESULT_TIMEOUT_MS = 24 * 60 * 60_000;
const TIMEOUT_MS = 10_000;

/**
 * A 2025 task lives on the replica that runs its call; its id ends with that replica's id (`task_<ulid>_<replica>`),
 * so any other replica forwards `tasks/get`, `tasks/result` and `tasks/cancel` for it there, over bus request/reply.
 */
export class TaskRelay {
  constructor(
    private readonly bus: Bus,
    private readonly replica: string,
    private readonly tasks: CallTasks,
  ) {}

  /** Whether the id is one of Gatehouse's tasks (on this replica or another), not an upstream's. */
  isGatehouseTask(taskId: unknown): taskId is string {
    return typeof taskId === 'string' && taskId.startsWith('task_');
  }

  /** The replica that runs the task, when it is another one than this. */
  elsewhere(taskId: unknown): string | undefined {
    if (typeof taskId !== 'string') return undefined;
    const owner = taskId.slice(taskId.lastIndexOf('_') + 1);
    return owner && owner !== this.replica && taskId.startsWith('task_') ? owner : undefined;
  }

  /** Answers for the tasks this replica runs. */
  serve(): Subscription {
    return this.bus.reply(subjectOf(this.replica), async (body) => {
      const { method, caller, taskId } = body as RelayedRequest;
      return this.answer(method, caller, taskId, AbortSignal.timeout(RESULT_TIMEOUT_MS));
    });
  }

  /** What this replica answers about one of its tasks. */
  async answer(method: TaskMethod, caller: Caller, taskId: unknown, signal: AbortSignal): Promise<TaskOutcome> {
    if (method === 'tasks/result') return this.tasks.result(caller, taskId, signal);
    const view = method === 'tasks/get' ? this.tasks.get(caller, taskId) : method === 'tasks/detailed' ? this.tasks.detailed(caller, taskId) : this.tasks.cancel(caller, taskId);
    return 'taskId' in view ? { result: { ...view } } : { error: view as JsonRpcErrorObject };
  }

  /** Asks the replica that runs the task; one that is gone leaves the task as unknown as it is. */
  async forward(owner: string, method: TaskMethod, caller: Caller, taskId: string, signal: AbortSignal): Promise<TaskOutcome> {
    const request: RelayedRequest = { method, caller: { principal: caller.principal, tenant: caller.tenant }, taskId };
    try {
      return (await this.bus.request(subjectOf(owner), request, { timeoutMs: method === 'tasks/result' ? RESULT_TIMEOUT_MS : TIMEOUT_MS, signal })) as TaskOutcome;
    } catch {
      return { error: { code: RpcErrorCode.INVALID_PARAMS, message: `Unknown task: ${taskId} (the replica that ran it does not answer)` } };
    }
  }
}

const subjectOf = (replica: string): string => `gh.replica.${replica}.tasks`;
