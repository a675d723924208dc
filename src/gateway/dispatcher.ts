import type { Upstream } from '../ports.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { JsonRpcErrorObject, JsonRpcRequest } from '../protocol/jsonrpc.ts';
import { RpcErrorCode } from '../protocol/jsonrpc.ts';
import { LEGACY_PROTOCOL_VERSIONS, LOG_LEVELS, MODERN_PROTOCOL_VERSION, type LogLevel } from '../protocol/mcp.ts';
import { isGatewayError } from '../errors.ts';
import type { CallPipeline } from '../call/pipeline.ts';
import type { ToolCatalog } from '../call/catalog.ts';
import type { ReplyChannel } from '../protocol/call.ts';
import type { ClientSession } from './session.ts';
import { encodeResult, passThroughMeta, REMOVED_IN_MODERN, SERVER_INFO } from './era.ts';
import type { UpstreamDirectory } from '../call/upstream-directory.ts';
import type { ResourceSubscriptions } from './resource-subscriptions.ts';
import { BUILTIN_TOOLS, type BuiltinTools } from '../approvals/channels/builtin-tools.ts';
import { TASKS_CAPABILITY, type CallTasks } from '../approvals/channels/tasks.ts';
import type { TaskRelay } from '../approvals/channels/task-relay.ts';
import type { TaskHooks } from '../protocol/call.ts';
import type { Logger } from '../log.ts';
import type { GovernedRequests } from './governed-requests.ts';
import { namespacedName } from '../call/tool-names.ts';
import { clientFactsOf } from './client-facts.ts';
import { TASK_METHODS, type UpstreamTasks } from './upstream-tasks.ts';
import { declaresTasks, missingTasksExtension, TASKS_EXTENSION } from '../protocol/tasks-extension.ts';

export type DispatchOutcome = { result: Record<string, unknown> } | { error: JsonRpcErrorObject };

export const SERVER_CAPABILITIES = {
  tools: { listChanged: true },
  resources: { subscribe: true, listChanged: true },
  prompts: { listChanged: true },
  completions: {},
  logging: {},
};

/** What a 2026-07-28 client hears in `server/discover`: the tasks extension as well (its tasks are the upstreams'). */
const MODERN_CAPABILITIES = { ...SERVER_CAPABILITIES, extensions: { [TASKS_EXTENSION]: {} } };

const INSTRUCTIONS =
  'Gatehouse governs these tools: each call is checked against policy, may need a human approval, and is audited. A result marked GH_ERR_APPROVAL_PENDING has not run yet; retry the same call after approval.';

/**
 * Answers MCP requests for any front and era: the handshake and the aggregated lists (each filtered by the kernel).
 * `tools/call` goes to the governed path, and so do resource reads and subscriptions, prompts and completions
 * (governed-requests.ts).
 */
export class Dispatcher {
  constructor(
    private readonly catalog: ToolCatalog,
    private readonly kernel: Kernel,
    private readonly pipeline: CallPipeline,
    private readonly upstreams: UpstreamDirectory,
    private readonly subscriptions: ResourceSubscriptions,
    private readonly log: Logger,
    private readonly builtins: BuiltinTools,
    private readonly tasks: CallTasks,
    private readonly taskRelay: TaskRelay,
    private readonly governed: GovernedRequests,
    private readonly upstreamTasks: UpstreamTasks,
  ) {}

  async handle(session: ClientSession, request: JsonRpcRequest, reply: ReplyChannel): Promise<DispatchOutcome> {
    const { method } = request;
    const params = request.params ?? {};
    if (session.era === 'modern' && REMOVED_IN_MODERN.has(method)) return methodNotFound(method);
    try {
      const outcome = await this.route(session, method, params, reply);
      return 'result' in outcome ? { result: encodeResult(session.era, method, outcome.result) } : outcome;
    } catch (err) {
      if (isGatewayError(err) && err.data?.rpcError) return { error: err.data.rpcError as JsonRpcErrorObject };
      if (isGatewayError(err)) return { error: { code: RpcErrorCode.SERVER_ERROR, message: err.message, data: { code: err.code } } };
      this.log.error(`${method} failed unexpectedly`, { error: (err as Error).stack ?? String(err) });
      return { error: { code: RpcErrorCode.INTERNAL_ERROR, message: 'internal error', data: { code: 'GH_ERR_INTERNAL' } } };
    }
  }

  private async route(session: ClientSession, method: string, params: Record<string, unknown>, reply: ReplyChannel): Promise<DispatchOutcome> {
    switch (method) {
      case 'initialize':
        return { result: this.initialize(session, params) };
      case 'server/discover':
        return { result: { supportedVersions: [MODERN_PROTOCOL_VERSION], capabilities: MODERN_CAPABILITIES, instructions: INSTRUCTIONS } };
      case 'ping':
        return { result: {} };
      case 'tools/list':
        await this.catalog.recheck();
        return { result: { tools: this.visibleTools(session) } };
      case 'tools/call':
        if (session.era === 'legacy' && isObject(params.task)) return this.callToolAsTask(session, params);
        return this.callTool(session, params, reply);
      case 'tasks/get':
      case 'tasks/cancel':
      case 'tasks/result':
      case 'tasks/list':
      case 'tasks/update':
        if (session.era === 'modern') return this.upstreamTask(session, method, params, reply);
        return method === 'tasks/update' ? methodNotFound(method) : this.task(session, method, params, reply);
      case 'resources/list':
        return { result: { resources: await this.upstreams.collect('resources/list', 'resources', 'resources', { keep: this.listable(session, 'resource', 'uri') }) } };
      case 'resources/templates/list':
        return { result: { resourceTemplates: await this.upstreams.collect('resources/templates/list', 'resourceTemplates', 'resources', { keep: this.listable(session, 'resource', 'uriTemplate') }) } };
      case 'prompts/list':
        return { result: { prompts: await this.upstreams.collect('prompts/list', 'prompts', 'prompts', { namespaceNames: true, keep: this.listable(session, 'prompt', 'name') }) } };
      case 'resources/read':
      case 'resources/subscribe':
      case 'prompts/get':
      case 'completion/complete':
        return this.governed.handle(session, method, params, reply);
      case 'resources/unsubscribe':
        return this.unsubscribe(session, params, reply);
      case 'logging/setLevel':
        return this.setLogLevel(session, params);
      default:
        return methodNotFound(method);
    }
  }

  private initialize(session: ClientSession, params: Record<string, unknown>): Record<string, unknown> {
    const requested = String(params.protocolVersion ?? '');
    session.protocolVersion = (LEGACY_PROTOCOL_VERSIONS as readonly string[]).includes(requested) ? requested : LEGACY_PROTOCOL_VERSIONS[0];
    session.capabilities = (params.capabilities as Record<string, unknown>) ?? {};
    const info = params.clientInfo as { name?: string; version?: string } | undefined;
    if (info?.name) session.clientInfo = { name: String(info.name), version: String(info.version ?? '') };
    // A 2025 client may run a call as a task (2025-11-25 experimental tasks); the 2026-07-28 revision removed them.
    return { protocolVersion: session.protocolVersion, capabilities: { ...SERVER_CAPABILITIES, tasks: TASKS_CAPABILITY }, serverInfo: SERVER_INFO, instructions: INSTRUCTIONS };
  }

  /**
   * The tools this caller may call at all: listing and calling share the kernel's one decision function. The
   * approval tools Gatehouse serves itself come last, for every caller, when the policy can ask for approvals.
   */
  visibleTools(session: ClientSession): Record<string, unknown>[] {
    const { principal, tenant } = session.caller;
    const tools: Record<string, unknown>[] = this.catalog
      .entries()
      .filter((e) => this.kernel.mayList({ tenant, principal, server: e.server, tool: e.id, annotations: e.facts.annotations, riskTags: e.facts.riskTags, labels: e.facts.labels }))
      .map((e) => (session.era === 'legacy' ? withTaskSupport(e.exposed) : e.exposed));
    if (this.kernel.mayRequireApproval) tools.push(...BUILTIN_TOOLS);
    return tools;
  }

  /**
   * A 2026-07-28 client that declared the tasks extension gets a task from Gatehouse when its call has to wait for
   * an approval (input_required until it settles, then the call runs); otherwise the call answers as it would
   * without Gatehouse: the upstream's result, or the upstream's own task.
   */
  private async callTool(session: ClientSession, params: Record<string, unknown>, reply: ReplyChannel): Promise<DispatchOutcome> {
    if (session.era !== 'modern' || !declaresTasks(session.capabilities) || params.requestState !== undefined) return this.runTool(session, params, reply);
    const started = await this.tasks.startIfWaiting(session.caller, reply, async (taskReply, hooks) => {
      const outcome = await this.runTool(session, params, taskReply, hooks);
      return 'error' in outcome ? outcome : { result: outcome.result as { content: Record<string, unknown>[] } };
    });
    if ('outcome' in started) return started.outcome;
    const { ttl, pollInterval, ...view } = started.task;
    return { result: { resultType: 'task', ...view, ttlMs: ttl, ...(pollInterval ? { pollIntervalMs: pollInterval } : {}) } };
  }

  private async runTool(session: ClientSession, params: Record<string, unknown>, reply: ReplyChannel, task?: TaskHooks): Promise<DispatchOutcome> {
    if (typeof params.name !== 'string') return invalidParams('tools/call needs a string "name"');
    const args = params.arguments ?? {};
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return invalidParams('"arguments" must be an object');
    if (this.builtins.has(params.name)) return { result: await this.builtins.call(params.name, args as Record<string, unknown>, session.caller, reply) };
    const outcome = await this.pipeline.call({
      caller: session.caller,
      name: params.name,
      arguments: args as Record<string, unknown>,
      meta: passThroughMeta(params),
      reply,
      ...clientFactsOf(session, params),
      ...(task ? { task } : {}),
    });
    if ('result' in outcome) return { result: outcome.result.resultType === 'task' ? await this.taskCreated(session, params.name, outcome.result) : outcome.result };
    return 'inputRequired' in outcome ? { result: outcome.inputRequired } : { error: outcome.error };
  }

  /** `tools/call` with `params.task` (2025 tasks): answered at once with the task; the call runs on in it. */
  private callToolAsTask(session: ClientSession, params: Record<string, unknown>): DispatchOutcome {
    const { task, ...call } = params;
    const created = this.tasks.start(session.caller, task as { ttl?: unknown }, (message) => session.push?.(message), async (reply, hooks) => {
      const outcome = await this.runTool(session, call, reply, hooks);
      return 'error' in outcome ? outcome : { result: outcome.result as { content: Record<string, unknown>[] } };
    });
    return { result: created };
  }

  /** Tasks this replica runs are answered here; one another replica runs is asked of it (`tasks/list`: this replica's). */
  private async task(session: ClientSession, method: string, params: Record<string, unknown>, reply: ReplyChannel): Promise<DispatchOutcome> {
    const { caller } = session;
    if (method === 'tasks/list') return { result: this.tasks.list(caller) };
    const taskMethod = method as 'tasks/get' | 'tasks/result' | 'tasks/cancel';
    const owner = this.taskRelay.elsewhere(params.taskId);
    if (owner) return this.taskRelay.forward(owner, taskMethod, caller, params.taskId as string, reply.signal);
    return this.taskRelay.answer(taskMethod, caller, params.taskId, reply.signal);
  }

  /**
   * A 2026-07-28 upstream answered with a task (the client declared the extension, so its envelope said so): the
   * client gets Gatehouse's signed id for it, which only this caller can use.
   */
  private async taskCreated(session: ClientSession, name: string, result: Record<string, unknown>): Promise<Record<string, unknown>> {
    const server = this.catalog.resolve(name)?.server;
    if (!server) throw new Error(`a task from a tool that is not in the catalog: ${name}`);
    return this.upstreamTasks.created(session.caller, server, result);
  }

  /**
   * The 2026-07-28 tasks extension's methods: Gatehouse's own tasks (a call waiting for an approval) are answered
   * here, or by the replica that runs them; an upstream's go to that upstream. The removed methods are unknown.
   */
  private async upstreamTask(session: ClientSession, method: string, params: Record<string, unknown>, reply: ReplyChannel): Promise<DispatchOutcome> {
    if (!TASK_METHODS.has(method)) return methodNotFound(method);
    if (!declaresTasks(session.capabilities)) return { error: missingTasksExtension() };
    const { taskId } = params;
    if (!this.taskRelay.isGatehouseTask(taskId)) return this.upstreamTasks.forward(session.caller, method, params, session.capabilities, reply.signal);
    const detail = await this.gatehouseTask(session, 'tasks/detailed', taskId, reply);
    if ('error' in detail) return detail;
    // Approved, the call made a task at its upstream: that task answers for this one from now on.
    const after = detail.result.result as Record<string, unknown> | undefined;
    if (after?.resultType === 'task') {
      const forwarded = await this.upstreamTasks.forward(session.caller, method, { ...params, taskId: after.taskId }, session.capabilities, reply.signal);
      return 'result' in forwarded && typeof forwarded.result.taskId === 'string' ? { result: { ...forwarded.result, taskId } } : forwarded;
    }
    if (method === 'tasks/get') return detail;
    // Cancelling an ended task is acknowledged all the same (the extension's cancel is idempotent); there is nothing to update.
    if (method === 'tasks/cancel') await this.gatehouseTask(session, 'tasks/cancel', taskId, reply);
    return { result: {} };
  }

  private gatehouseTask(session: ClientSession, method: 'tasks/detailed' | 'tasks/cancel', taskId: string, reply: ReplyChannel): Promise<DispatchOutcome> {
    const owner = this.taskRelay.elsewhere(taskId);
    if (owner) return this.taskRelay.forward(owner, method, session.caller, taskId, reply.signal);
    return this.taskRelay.answer(method, session.caller, taskId, reply.signal);
  }

  /**
   * A URI a `subscriptions/listen` stream asks to watch, subscribed as a 2025 `resources/subscribe` is: governed,
   * and held for the session until it ends. The revision removed the method, not what it does.
   */
  subscribeListener(session: ClientSession, uri: string, reply: ReplyChannel): Promise<DispatchOutcome> {
    return this.governed.handle(session, 'resources/subscribe', { uri }, reply);
  }

  /** Not governed: it only lets go. The upstream's subscription is dropped once no session holds the URI. */
  private async unsubscribe(session: ClientSession, params: Record<string, unknown>, reply: ReplyChannel): Promise<DispatchOutcome> {
    if (typeof params.uri !== 'string') return invalidParams('resources/unsubscribe needs a string "uri"');
    const upstream = await this.upstreams.ownerOfUri(params.uri);
    if (!upstream) return { error: { code: -32002, message: `Resource not found: ${params.uri}`, data: { uri: params.uri } } };
    if (!this.subscriptions.remove(session, params.uri)) return { result: {} };
    return { result: await this.forward(upstream, 'resources/unsubscribe', params, reply) };
  }

  /** Keeps a listed resource, template or prompt (`key` holds its URI, template or own name) the caller may use. */
  private listable(session: ClientSession, kind: 'resource' | 'prompt', key: string): (server: string, item: Record<string, unknown>) => boolean {
    return (server, item) => {
      const name = String(item[key]);
      return this.governed.mayList(session, server, kind, kind === 'prompt' ? namespacedName(server, name) : name);
    };
  }

  private async setLogLevel(session: ClientSession, params: Record<string, unknown>): Promise<DispatchOutcome> {
    const level = String(params.level);
    if (!(LOG_LEVELS as readonly string[]).includes(level)) return invalidParams(`unknown log level ${level}`);
    session.logLevel = level as LogLevel;
    await this.upstreams.raiseLogLevel(session.logLevel);
    return { result: {} };
  }

  /** Forwards one request, with progress and cancellation tied to the client's request. */
  private forward(upstream: Upstream, method: string, params: Record<string, unknown>, reply: ReplyChannel): Promise<Record<string, unknown>> {
    const { progressToken } = reply;
    const forwarded: Record<string, unknown> = { ...params };
    const meta = passThroughMeta(params);
    if (meta) forwarded._meta = meta;
    else delete forwarded._meta;
    return upstream.request(method, forwarded, {
      signal: reply.signal,
      timeoutMs: this.upstreams.timeoutMs(upstream.name),
      onProgress: progressToken === undefined ? undefined : (u) => reply.notify('notifications/progress', { progressToken, ...u }),
      onServerRequest: reply.ask,
      onNotification: (m, p) => reply.notify(m, p ?? {}),
    });
  }
}

/** 2025 clients may run any tool as a task: Gatehouse, not the upstream, keeps the task. */
const withTaskSupport = (tool: Record<string, unknown>): Record<string, unknown> => ({ ...tool, execution: { ...(tool.execution as object | undefined), taskSupport: 'optional' } });
const isObject = (value: unknown): boolean => value !== null && typeof value === 'object' && !Array.isArray(value);
const methodNotFound = (method: string): DispatchOutcome => ({ error: { code: RpcErrorCode.METHOD_NOT_FOUND, message: `Method not found: ${method}`, data: { code: 'GH_ERR_METHOD_NOT_FOUND' } } });
const invalidParams = (message: string): DispatchOutcome => ({ error: { code: RpcErrorCode.INVALID_PARAMS, message } });
