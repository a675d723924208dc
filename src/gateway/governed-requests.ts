import type { Upstream } from '../ports.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { DecisionInput } from '../kernel/decision.ts';
import { requestName } from '../kernel/request-kind.ts';
import { RpcErrorCode, type JsonRpcErrorObject } from '../protocol/jsonrpc.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import { digestOf } from '../protocol/digest.ts';
import { resourceUriProblem } from '../enforcement/resource-uri.ts';
import type { CallPipeline } from '../call/pipeline.ts';
import type { CatalogEntry, ToolCatalog, UpstreamRequest } from '../call/catalog.ts';
import type { ReplyChannel } from '../protocol/call.ts';
import type { ClientSession } from './session.ts';
import type { UpstreamDirectory } from '../call/upstream-directory.ts';
import type { ResourceSubscriptions } from './resource-subscriptions.ts';
import { passThroughMeta } from './era.ts';
import { namespacedName } from '../call/tool-names.ts';
import { clientFactsOf } from './client-facts.ts';

type Outcome = { result: Record<string, unknown> } | { error: JsonRpcErrorObject };

/** A request other than a tool call, with the upstream that serves it and what the constraints check. */
interface Resolved {
  upstream: Upstream;
  request: UpstreamRequest;
  /** What policies see as `args`: `{ uri }` for a resource, the prompt's arguments, a completion's argument. */
  args: Record<string, unknown>;
}

/**
 * `resources/read`, `resources/subscribe`, `prompts/get` and `completion/complete`, governed as tool calls are: each
 * becomes a job that the kernel decides (with `kind`, `method`, `uri` or `prompt`), that is audited, held for a
 * human when the policy says so, and run by the executor with its constraints. A refusal is a JSON-RPC error whose
 * `data.code` is the GH_ERR_* code. The lists (`resources/list`, `resources/templates/list`, `prompts/list`) leave
 * out what the caller could never read or get, by the same decision function.
 */
export class GovernedRequests {
  constructor(
    private readonly kernel: Kernel,
    private readonly catalog: ToolCatalog,
    private readonly pipeline: CallPipeline,
    private readonly upstreams: UpstreamDirectory,
    private readonly subscriptions: ResourceSubscriptions,
  ) {}

  async handle(session: ClientSession, method: string, params: Record<string, unknown>, reply: ReplyChannel): Promise<Outcome> {
    const resolved = await this.resolve(method, params);
    if ('error' in resolved) return resolved;
    const { upstream, request, args } = resolved;
    const target = this.entryFor(upstream.name, request);
    // A 2026-07-28 client answers a prompt's input requests itself, as it does a tool's: it gets input_required, and
    // its retry carries the answers with Gatehouse's state. Otherwise, without client facts, the approval gate
    // answers with the pending result or holds the request, and the upstream's questions go to a 2025 session.
    const relays = method === 'prompts/get' && session.era === 'modern';
    const outcome = await this.pipeline.call({ caller: session.caller, name: target.name, arguments: args, meta: passThroughMeta(params), reply, ...(relays ? clientFactsOf(session, params) : {}) }, target);
    if ('error' in outcome && outcome.error) return { error: outcome.error };
    if ('inputRequired' in outcome && relays) return { result: outcome.inputRequired };
    if (!('result' in outcome)) return { error: { code: RpcErrorCode.INTERNAL_ERROR, message: `${method} cannot wait for input here`, data: { code: 'GH_ERR_INTERNAL' } } };
    if (outcome.result.isError) return { error: refusalError(outcome.result) };
    if (method === 'resources/subscribe') this.subscriptions.add(session, request.target, upstream);
    return { result: outcome.result };
  }

  /** Whether a listed resource, resource template or prompt could be read or got by this caller at all. */
  mayList(session: ClientSession, server: string, kind: 'resource' | 'prompt', target: string): boolean {
    const { principal, tenant } = session.caller;
    const { labels } = this.catalog.upstreamFacts(server);
    // No method yet (a read or a subscribe): a condition on `method` is assumed to go the caller's way.
    const input: Omit<DecisionInput, 'args'> = { tenant, principal, server, tool: target, kind, annotations: undefined, labels };
    return this.kernel.mayList(kind === 'resource' ? { ...input, uri: target } : { ...input, prompt: target });
  }

  private async resolve(method: string, params: Record<string, unknown>): Promise<Resolved | { error: JsonRpcErrorObject }> {
    if (method === 'prompts/get') {
      const owner = typeof params.name === 'string' ? await this.upstreams.ownerOfName(params.name) : undefined;
      if (!owner) return invalidParams(`Unknown prompt: ${String(params.name)}`);
      const args = isObject(params.arguments) ? (params.arguments as Record<string, unknown>) : {};
      return { upstream: owner.upstream, args, request: { kind: 'prompt', method, target: namespacedName(owner.upstream.name, owner.name), params: { ...withoutMeta(params), name: owner.name } } };
    }
    if (method === 'completion/complete') return this.resolveCompletion(params);
    if (typeof params.uri !== 'string') return invalidParams(`${method} needs a string "uri"`);
    const { uri } = params;
    const problem = resourceUriProblem(uri);
    if (problem) return invalidParams(`Refused resource URI: ${problem}`, 'GH_ERR_INVALID_ARGUMENTS');
    const upstream = await this.upstreams.ownerOfUri(uri);
    if (!upstream) return { error: { code: -32002, message: `Resource not found: ${uri}`, data: { uri } } };
    // The upstream holds one subscription per URI for every session (see ResourceSubscriptions).
    const held = method === 'resources/subscribe' && this.subscriptions.has(uri);
    return { upstream, args: { uri }, request: { kind: 'resource', method, target: uri, params: withoutMeta(params), ...(held ? { answered: {} } : {}) } };
  }

  /** A completion is about the prompt or resource template whose argument it completes, and governed as such. */
  private async resolveCompletion(params: Record<string, unknown>): Promise<Resolved | { error: JsonRpcErrorObject }> {
    const method = 'completion/complete';
    const ref = params.ref as { type?: string; name?: string; uri?: string } | undefined;
    const args = { argument: params.argument, ...(params.context !== undefined ? { context: params.context } : {}) };
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      const owner = await this.upstreams.ownerOfName(ref.name);
      if (!owner) return invalidParams(`Unknown prompt: ${ref.name}`);
      const target = namespacedName(owner.upstream.name, owner.name);
      return { upstream: owner.upstream, args, request: { kind: 'prompt', method, target, params: { ...withoutMeta(params), ref: { ...ref, name: owner.name } } } };
    }
    if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const upstream = await this.upstreams.ownerOfUri(ref.uri);
      if (!upstream) return invalidParams(`Unknown resource: ${ref.uri}`);
      return { upstream, args, request: { kind: 'resource', method, target: ref.uri, params: withoutMeta(params) } };
    }
    return invalidParams('completion/complete needs a ref/prompt or ref/resource');
  }

  /** The request in the place of a catalog tool: its name is its method and target, its facts its upstream's. */
  private entryFor(server: string, request: UpstreamRequest): CatalogEntry {
    const name = requestName(request.method, request.target);
    const tool = { name: request.method, inputSchema: { type: 'object' } };
    return { name, id: name, server, tool, exposed: tool, digest: digestOf({ method: request.method, target: request.target }), facts: this.catalog.upstreamFacts(server), check: () => undefined, request };
  }
}

/**
 * A refusal (policy, approval, constraint, a dead upstream) as the JSON-RPC error a resource or prompt request gets:
 * the message the model would have read, and the result's `_meta` (`gatehouse/error`'s code and detail, the job, the
 * approval) in `data`.
 */
function refusalError(result: CallToolResult): JsonRpcErrorObject {
  const { 'gatehouse/error': error, ...meta } = (result._meta ?? {}) as { 'gatehouse/error'?: { code?: string } & Record<string, unknown> } & Record<string, unknown>;
  const text = result.content.map((part) => (part.type === 'text' ? String(part.text) : '')).join('\n');
  return { code: RpcErrorCode.SERVER_ERROR, message: text, data: { code: error?.code ?? 'GH_ERR_INTERNAL', ...error, ...meta } };
}

/** What goes on to the upstream: neither the client's `_meta` nor a retry's answers and state (Gatehouse's business). */
const withoutMeta = ({ _meta, requestState: _state, inputResponses: _answers, ...rest }: Record<string, unknown>): Record<string, unknown> => rest;
const isObject = (value: unknown): boolean => value !== null && typeof value === 'object' && !Array.isArray(value);
const invalidParams = (message: string, code?: string): { error: JsonRpcErrorObject } => ({ error: { code: RpcErrorCode.INVALID_PARAMS, message, ...(code ? { data: { code } } : {}) } });
