/** What a grant is ("this and matching calls"), how an approver's request for one is checked, and what it matches. */
import { celValue, compileCondition, type ConditionScope } from '../kernel/cel.ts';
import { digestOf } from '../protocol/digest.ts';
import { GatewayError } from '../errors.ts';
import type { ApprovalGrant, ApprovalRecord, GrantScope } from '../protocol/approval-record.ts';
import type { Effect } from '../kernel/effect.ts';
import { approverRefusal, type ApprovalPolicy, type ApproverGroups } from './policy.ts';

export const MIN_GRANT_MS = 15 * 60_000;
export const MAX_GRANT_MS = 8 * 60 * 60_000;

/** What an approver asks for when approving: the condition they saw pre-filled (and may have edited), whose calls, how long. */
export interface GrantRequest {
  condition: string;
  scope: GrantScope;
  /** 15 min to 8 h. */
  durationMs: number;
}

/** The call a grant is tried against. */
export interface GrantedCall {
  sessionId: string | undefined;
  arguments: Record<string, unknown>;
  /** What the current policy decided for the call: a grant stands in for an approval, so only `require_approval` can use one. */
  effect: Effect;
  ruleIds: readonly string[];
  toolDigest: string;
  /** How the current policy would have its approval given (`approvalPolicyOf` over the decision's rules). */
  approval: ApprovalPolicy;
}

/**
 * The key a call finds the grants for its tool by (one indexed lookup, as a retry finds its approval): tenant,
 * principal, server and tool. The scope, the session, the definition and the condition are checked on each grant.
 */
export function grantKeyOf(call: { tenant: string; principal: string; server: string; tool: string }): string {
  return digestOf({ grantsOf: { tenant: call.tenant, principal: call.principal, server: call.server, tool: call.tool } });
}

/**
 * Checks an approver's grant request against the approval it comes from; throws GH_ERR_GRANT_INVALID saying what
 * is wrong. A grant skips every later approval, so it may only come from an approval one approver can settle, and
 * a session grant needs a session to bind to.
 */
export function checkGrantRequest(raw: unknown, approval: ApprovalRecord): GrantRequest {
  const request = raw as Partial<GrantRequest> | undefined;
  const invalid = (reason: string) => new GatewayError('GH_ERR_GRANT_INVALID', `grant refused: ${reason}`, { data: { approvalId: approval.id } });
  if (!request || typeof request !== 'object') throw invalid('send { condition, scope, durationMs }');
  if (typeof request.condition !== 'string' || request.condition.trim() === '') throw invalid('the condition must be a CEL expression');
  try {
    compileCondition(request.condition);
  } catch (err) {
    throw invalid((err as Error).message);
  }
  if (request.scope !== 'session' && request.scope !== 'principal') throw invalid('scope must be session or principal');
  if (request.scope === 'session' && !approval.sessionId) throw invalid('the call had no MCP session to bind a session grant to; grant for the principal instead');
  const ms = request.durationMs;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < MIN_GRANT_MS || ms > MAX_GRANT_MS) throw invalid('durationMs must be from 15 minutes (900000) to 8 hours (28800000)');
  if (approval.quorum > 1) throw invalid(`the approval needs ${approval.quorum} approvers; a grant would let one approver stand for them`);
  return { condition: request.condition.trim(), scope: request.scope, durationMs: ms };
}

/**
 * Why a live grant does not serve this call, or undefined when it does. The current policy must hold the call for
 * approval (a grant never overrides a deny, nor takes credit for an allow). Its rules must cover every rule that asks
 * now (a stricter rule added since, or another rule's approvers, still ask), its granter must be able to give that
 * approval alone today (a quorum raised, approvers changed or self-approval withdrawn since: a question again), the
 * definition must be the one it was given for, and its condition must be exactly `true` for the arguments (an
 * evaluation error is no match).
 */
export function grantMiss(grant: ApprovalRecord & { grant: ApprovalGrant }, call: GrantedCall, groups: ApproverGroups): 'stale' | 'miss' | undefined {
  if (grant.toolDigest !== call.toolDigest) return 'stale';
  if (call.effect !== 'require_approval') return 'miss';
  const { approval } = call;
  if (approval.quorum > 1 || approval.conflict || approverRefusal({ principal: grant.principal, ...approval }, grant.grant.grantedBy, 'approve', groups)) return 'miss';
  if (grant.grant.scope === 'session' && (call.sessionId === undefined || grant.grant.sessionId !== call.sessionId)) return 'miss';
  if (!call.ruleIds.every((id) => grant.ruleIds.includes(id))) return 'miss';
  try {
    return compileCondition(grant.grant.condition).evaluate(scopeOf(grant, call.arguments)) === true ? undefined : 'miss';
  } catch {
    return 'miss';
  }
}

/** Equality on each argument the approver saw: the narrowest condition, which the approver widens on purpose. */
export function prefilledCondition(args: Record<string, unknown> | undefined): string {
  const keys = Object.keys(args ?? {});
  if (keys.length === 0) return 'size(args) == 0';
  return keys.map((key) => `${argRef(key)} == ${celLiteral(args![key])}`).join(' && ');
}

function argRef(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `args.${key}` : `args[${JSON.stringify(key)}]`;
}

function celLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : Number.isFinite(value) ? `${value}${Number.isInteger(value) ? '.0' : ''}` : 'null';
  if (typeof value === 'boolean') return String(value);
  // dyn(): CEL's checker refuses a literal list or map whose elements differ in type, as JSON's may.
  if (Array.isArray(value)) return `[${value.map((v) => `dyn(${celLiteral(v)})`).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}: dyn(${celLiteral(v)})`).join(', ')}}`;
}

const NO_SESSION = new Map<string, unknown>();

/** A grant's condition reads the call's arguments and who calls what; time and session facts are not its business. */
function scopeOf(grant: ApprovalRecord, args: Record<string, unknown>): ConditionScope {
  return {
    tool: grant.tool,
    server: grant.server,
    principal: grant.principal,
    tenant: grant.tenant,
    args: celValue(args) as ReadonlyMap<string, unknown>,
    labels: {},
    annotations: {},
    riskTags: [],
    now: new Date(0),
    kind: 'tool',
    method: 'tools/call',
    uri: '',
    prompt: '',
    session: NO_SESSION,
  };
}
