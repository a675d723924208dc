import type { ApprovalSpec } from '../kernel/decision.ts';
import type { ApprovalRecord, OnApprove } from '../protocol/approval-record.ts';

/** Approver groups from the config (`approvals.groups`): group name → principals. */
export type ApproverGroups = Readonly<Record<string, readonly string[]>>;

/**
 * How one approval is handled: the options of every matching `require_approval` rule, merged to the most
 * restrictive. Defaults (no rule sets the option):
 * - `ttlMs`: the service's TTL (config `approvals.ttl`); otherwise the shortest a rule sets.
 * - `approvers`: anyone; otherwise only who every rule that names approvers allows (an empty list: nobody).
 * - `selfApprove`: true, so that one local user can approve their own agent's call through the CLI, the embedded
 *   default; false as soon as one rule says false.
 * - `quorum`: 1 distinct approver; otherwise the largest a rule asks for.
 * - `onApprove`: `wait_for_retry` (the call runs when the client retries it); `execute` only if every rule that
 *   sets it says so.
 */
export interface ApprovalPolicy {
  ttlMs?: number;
  approvers?: string[];
  selfApprove: boolean;
  quorum: number;
  onApprove: OnApprove;
  /** Why nobody can approve (no approver in common, or fewer approvers than the quorum), if that is the case. */
  conflict?: string;
}

export interface ApproverRefusal {
  code: 'GH_ERR_APPROVER_NOT_ALLOWED' | 'GH_ERR_SELF_APPROVAL_FORBIDDEN';
  reason: string;
}

const GROUP = 'group:';

export function approvalPolicyOf(specs: readonly ApprovalSpec[] | undefined, groups: ApproverGroups = {}): ApprovalPolicy {
  const rules = specs ?? [];
  const ttls = rules.flatMap((s) => (s.ttlMs === undefined ? [] : [s.ttlMs]));
  const quorum = Math.max(1, ...rules.flatMap((s) => (s.quorum === undefined ? [] : [s.quorum])));
  const onApproves = rules.flatMap((s) => (s.onApprove === undefined ? [] : [s.onApprove]));
  const policy: ApprovalPolicy = {
    ...(ttls.length ? { ttlMs: Math.min(...ttls) } : {}),
    selfApprove: !rules.some((s) => s.selfApprove === false),
    quorum,
    onApprove: onApproves.length > 0 && onApproves.every((o) => o === 'execute') ? 'execute' : 'wait_for_retry',
  };
  const named = rules.filter((s) => s.approvers !== undefined);
  if (named.length === 0) return policy;
  const approvers = intersect(named.map((s) => s.approvers!), groups);
  policy.approvers = approvers;
  if (approvers.length === 0) {
    policy.conflict = `the matching rules name no approver in common (${named.map((s) => `${s.ruleId}: ${s.approvers!.join(', ') || 'none'}`).join('; ')}), so nobody can approve this call`;
  } else {
    const reachable = new Set(approvers.flatMap((a) => (a.startsWith(GROUP) ? (groups[a.slice(GROUP.length)] ?? []) : [a])));
    if (reachable.size < quorum) policy.conflict = `a quorum of ${quorum} needs more approvers than the ${reachable.size} the rules allow (${approvers.join(', ')}), so nobody can approve this call`;
  }
  return policy;
}

/**
 * Whether `actor` may approve or deny. The requester may always deny (withdraw) their own call. A group is read
 * from the config when this process has it (so a removal from the group applies at once) and otherwise from the
 * membership kept on the record when it was created (the CLI run with only `--data-dir`).
 */
export function approverRefusal(record: Pick<ApprovalRecord, 'principal' | 'selfApprove' | 'approvers' | 'approverGroups'>, actor: string, action: 'approve' | 'deny', groups: ApproverGroups = {}): ApproverRefusal | undefined {
  if (actor === record.principal) {
    if (action === 'deny') return undefined;
    if (!record.selfApprove) return { code: 'GH_ERR_SELF_APPROVAL_FORBIDDEN', reason: `${actor} asked for this call, and the policy does not let the caller approve their own call` };
  }
  if (record.approvers === undefined) return undefined;
  const membersOf = (group: string) => groups[group] ?? record.approverGroups?.[group] ?? [];
  if (isAllowed(actor, record.approvers, membersOf)) return undefined;
  const who = record.approvers.length ? record.approvers.join(', ') : 'nobody (the matching rules name no approver in common)';
  return { code: 'GH_ERR_APPROVER_NOT_ALLOWED', reason: `${actor} may not ${action} this call; its approvers are ${who}` };
}

/** The members of the groups an approver list names, as the config has them now. */
export function groupMembers(approvers: readonly string[] | undefined, groups: ApproverGroups): Record<string, string[]> | undefined {
  const named = (approvers ?? []).filter((a) => a.startsWith(GROUP)).map((a) => a.slice(GROUP.length));
  if (named.length === 0) return undefined;
  return Object.fromEntries(named.map((g) => [g, [...(groups[g] ?? [])]]));
}

function isAllowed(actor: string, list: readonly string[], membersOf: (group: string) => readonly string[]): boolean {
  return list.some((entry) => entry === actor || (entry.startsWith(GROUP) && membersOf(entry.slice(GROUP.length)).includes(actor)));
}

/**
 * Who every list allows. A group every list names stays a group (its membership is read when someone acts); a
 * principal stays if every list allows it, by name or through a group, and no group kept already covers it.
 */
function intersect(lists: readonly (readonly string[])[], groups: ApproverGroups): string[] {
  const membersOf = (group: string) => groups[group] ?? [];
  const allows = (list: readonly string[], entry: string) => (entry.startsWith(GROUP) ? list.includes(entry) : isAllowed(entry, list, membersOf));
  const candidates = new Set(lists.flat().flatMap((e) => (e.startsWith(GROUP) ? [e, ...membersOf(e.slice(GROUP.length))] : [e])));
  const kept = [...candidates].filter((entry) => lists.every((list) => allows(list, entry)));
  const keptGroups = kept.filter((e) => e.startsWith(GROUP));
  return kept.filter((e) => e.startsWith(GROUP) || !isAllowed(e, keptGroups, membersOf));
}
