import type { JsonRpcErrorObject, JsonRpcNotification } from '../../protocol/jsonrpc.ts';
import { RpcErrorCode } from '../../protocol/jsonrpc.ts';
import type { CallToolResult } from '../../protocol/mcp.ts';
import { ulid } from '../../protocol/ulid.ts';
import type { Caller, ReplyChannel, TaskHooks } from '../../protocol/call.ts';

/**
 * 2025-11-25 experimental tasks for `tools/call`, on 2025 sessions: a call sent with `params.task` answers at once
 * with a task; the call runs on. While it waits for a human the task is `input_required` (its statusMessage says
 * who approves where), then `working`, then `completed` or `failed` with the call's result. `tasks/cancel`
 * cancels the call, which withdraws a pending approval. Tasks live in this process, like the session that made
 * them, and only their caller (principal and tenant) can see them.
 *
 * The 2026-07-28 tasks extension (SEP-2663) uses the same tasks for a call that has to wait for an approval
 * (`startIfWaiting`): the call answers as it is when it need not wait, and becomes a task the moment it must, shown
 * in the extension's shape (`detailed`). Tasks an upstream makes itself are the upstream's (gateway/upstream-tasks.ts).
 */

export type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled';

export interface TaskView {
  taskId: string;
  status: TaskStatus;
  statusMessage?: string;
  createdAt: string;
  lastUpdatedAt: string;
  ttl: number | null;
  pollInterval?: number;
}

interface Task {
  view: TaskView;
  owner: Caller;
  controller: AbortController;
  /** Set once the call has ended. */
  outcome?: { result: CallToolResult } | { error: JsonRpcErrorObject };
  done: Promise<void>;
  push: ((message: JsonRpcNotification) => void) | undefined;
}

type TaskOutcome = { result: CallToolResult } | { error: JsonRpcErrorObject };
export type TaskRun = (reply: ReplyChannel, hooks: TaskHooks) => Promise<TaskOutcome>;

/** The capability a 2025 server declares for task-augmented `tools/call`. */
export const TASKS_CAPABILITY = { list: {}, cancel: {}, requests: { tools: { call: {} } } };

const DEFAULT_TTL_MS = 60 * 60_000;
const MAX_TTL_MS = 24 * 60 * 60_000;
const POLL_INTERVAL_MS = 1_000;
const RELATED_TASK = 'io.modelcontextprotocol/related-task';

export class CallTasks {
  private readonly tasks = new Map<string, Task>();

  /** `replica` ends every task id, so another replica knows where the task runs (see TaskRelay). */
  constructor(private readonly replica: string) {}

  /** Starts `run` as a task and returns `{ task }`, the CreateTaskResult. */
  start(owner: Caller, requested: { ttl?: unknown }, push: Task['push'], run: TaskRun): { task: TaskView } {
    const task = this.create(owner, requested, push);
    this.keep(task);
    this.launch(task, run);
    return { task: { ...task.view } };
  }

  /**
   * 2026-07-28: runs `run`, and answers its outcome when it ends without having to wait; a call that waits for an
   * approval becomes a task then (input_required until the approval settles), and the task is the answer. Until
   * then the call streams on the client's request (progress, notifications) and that request can cancel it; after,
   * only `tasks/cancel` can.
   */
  async startIfWaiting(owner: Caller, request: ReplyChannel, run: TaskRun): Promise<{ outcome: TaskOutcome } | { task: TaskView }> {
    const task = this.create(owner, {}, undefined);
    let waiting = false;
    let parked!: () => void;
    const waits = new Promise<false>((resolve) => (parked = () => resolve(false)));
    const leave = () => task.controller.abort('the client went away before the call had to wait');
    request.signal.addEventListener('abort', leave, { once: true });
    const streamed: ReplyChannel = {
      signal: task.controller.signal,
      progressToken: request.progressToken,
      notify: (method, params) => (waiting ? undefined : request.notify(method, params)),
      ask: undefined,
    };
    // Kept (and given out) only once it waits: a call that answers at once leaves nothing behind.
    this.launch(task, run, () => ((waiting = true), this.keep(task), parked()), streamed);
    const ended = await Promise.race([task.done.then(() => true as const), waits]);
    request.signal.removeEventListener('abort', leave);
    if (!ended) return { task: { ...task.view } };
    return { outcome: task.outcome! };
  }

  /**
   * A task as the 2026-07-28 extension shows it (a DetailedTask): `ttlMs` and `pollIntervalMs`, and once it ended,
   * the call's result inlined (`completed`, even when the tool reported an error) or its error (`failed`).
   */
  detailed(caller: Caller, taskId: unknown): Record<string, unknown> | JsonRpcErrorObject {
    const task = this.find(caller, taskId);
    if (!('view' in task)) return task;
    const { ttl, pollInterval, ...view } = task.view;
    const shown = { ...view, ttlMs: ttl, ...(pollInterval ? { pollIntervalMs: pollInterval } : {}) };
    const { outcome } = task;
    if (!outcome || view.status === 'cancelled') return shown;
    return 'error' in outcome ? { ...shown, status: 'failed', error: outcome.error } : { ...shown, status: 'completed', result: outcome.result };
  }

  private create(owner: Caller, requested: { ttl?: unknown }, push: Task['push']): Task {
    const now = new Date().toISOString();
    const ttl = typeof requested.ttl === 'number' && requested.ttl > 0 ? Math.min(requested.ttl, MAX_TTL_MS) : DEFAULT_TTL_MS;
    const taskId = `task_${ulid()}_${this.replica}`;
    const controller = new AbortController();
    return { view: { taskId, status: 'working', createdAt: now, lastUpdatedAt: now, ttl, pollInterval: POLL_INTERVAL_MS }, owner, controller, done: Promise.resolve(), push };
  }

  private keep(task: Task): void {
    const { taskId, ttl } = task.view;
    this.tasks.set(taskId, task);
    if (ttl !== null) setTimeout(() => this.tasks.delete(taskId), ttl).unref();
  }

  private launch(task: Task, run: TaskRun, parked?: () => void, reply: ReplyChannel = { signal: task.controller.signal, progressToken: undefined, notify: () => undefined, ask: undefined }): void {
    const hooks: TaskHooks = {
      waiting: (message) => {
        this.update(task, 'input_required', message);
        parked?.();
      },
      working: () => this.update(task, 'working'),
      // A 2026-07-28 client answers an upstream's input requests itself, task or not.
      ...(parked ? { relaysInput: true } : {}),
    };
    task.done = run(reply, hooks).then(
      (outcome) => this.finish(task, outcome),
      (err: Error) => this.finish(task, { error: { code: RpcErrorCode.INTERNAL_ERROR, message: err.message, data: { code: 'GH_ERR_INTERNAL' } } }),
    );
  }

  get(caller: Caller, taskId: unknown): TaskView | JsonRpcErrorObject {
    const task = this.find(caller, taskId);
    return 'view' in task ? { ...task.view } : task;
  }

  list(caller: Caller): { tasks: TaskView[] } {
    return { tasks: [...this.tasks.values()].filter((t) => owns(caller, t)).map((t) => ({ ...t.view })) };
  }

  /** Waits for the task to end (or the request to be cancelled) and gives the call's own result. */
  async result(caller: Caller, taskId: unknown, signal: AbortSignal): Promise<{ result: Record<string, unknown> } | { error: JsonRpcErrorObject }> {
    const task = this.find(caller, taskId);
    if (!('view' in task)) return { error: task };
    await Promise.race([task.done, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]);
    if (!task.outcome) return { error: { code: RpcErrorCode.INTERNAL_ERROR, message: 'the request was cancelled before the task ended' } };
    if ('error' in task.outcome) return { error: task.outcome.error };
    const { result } = task.outcome;
    return { result: { ...result, _meta: { ...(result._meta ?? {}), [RELATED_TASK]: { taskId: task.view.taskId } } } };
  }

  /** Cancels the call behind the task: a pending approval is withdrawn, a running upstream call cancelled. */
  cancel(caller: Caller, taskId: unknown): TaskView | JsonRpcErrorObject {
    const task = this.find(caller, taskId);
    if (!('view' in task)) return task;
    if (isTerminal(task.view.status)) return { code: RpcErrorCode.INVALID_PARAMS, message: `Cannot cancel task ${task.view.taskId}: it is already ${task.view.status}` };
    this.update(task, 'cancelled', 'cancelled by the client');
    task.controller.abort('the client cancelled the task');
    return { ...task.view };
  }

  private finish(task: Task, outcome: NonNullable<Task['outcome']>): void {
    task.outcome = outcome;
    if (task.view.status === 'cancelled') return;
    this.update(task, 'error' in outcome || outcome.result.isError ? 'failed' : 'completed');
  }

  private update(task: Task, status: TaskStatus, statusMessage?: string): void {
    if (isTerminal(task.view.status)) return;
    const { statusMessage: _previous, ...rest } = task.view;
    task.view = { ...rest, status, lastUpdatedAt: new Date().toISOString(), ...(statusMessage ? { statusMessage } : {}) };
    task.push?.({ jsonrpc: '2.0', method: 'notifications/tasks/status', params: { ...task.view } });
  }

  private find(caller: Caller, taskId: unknown): Task | JsonRpcErrorObject {
    const task = typeof taskId === 'string' ? this.tasks.get(taskId) : undefined;
    // Another caller's task is as good as missing.
    if (!task || !owns(caller, task)) return { code: RpcErrorCode.INVALID_PARAMS, message: `Unknown task: ${String(taskId)}` };
    return task;
  }
}

const owns = (caller: Caller, task: Task): boolean => task.owner.principal === caller.principal && task.owner.tenant === caller.tenant;
const isTerminal = (status: TaskStatus): boolean => status === 'completed' || status === 'failed' || status === 'cancelled';
