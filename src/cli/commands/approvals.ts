import { userInfo } from 'node:os';
import { openApprovalState } from '../../runtime/state.ts';
import type { ApprovalRecord } from '../../protocol/approval-record.ts';
import { argsCutNote, argsSummaryOf } from '../../approvals/preview.ts';
import { GatewayError } from '../../errors.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { stateConfig, STATE_FLAGS } from '../state.ts';
import { prefilledCondition } from '../../approvals/grant.ts';
import { GRANT_FLAGS, GRANTS_HELP, grantLine, grantRequestOf, listGrants } from './approval-grants.ts';

export const APPROVALS_HELP = `Usage:
  gatehouse approvals list [--all] [--json]
  gatehouse approvals show ID [--json]
  gatehouse approvals approve ID [--reason TEXT] [--as NAME]
  gatehouse approvals approve ID --args JSON [--reason TEXT] [--as NAME]
  gatehouse approvals deny ID [--reason TEXT] [--as NAME]

Works on the data dir of a running gateway (another process is fine).
  --config FILE     the gateway's config (default ./gatehouse.yaml when present)
  --data-dir DIR    the data dir directly (default for wrap: ~/.gatehouse)
  --all             list settled approvals too, not only pending ones
  --args JSON       approve with these arguments changed (a JSON object of the top-level arguments to set; the
                    others stay as the call sent them): the retry runs the changed call once, if the tool's
                    schema takes it and the policy does not deny it
  --as NAME         who approves or denies, checked against the approval's approvers and recorded in the
                    audit trail (default: your user name)

${GRANTS_HELP}

An approval may name its approvers (principals or group:NAME from approvals.groups in the config), forbid the
caller to approve their own call, and need a quorum of distinct approvers: \`show\` lists them and the votes.`;

export async function runApprovals(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'reason', 'as', 'args', ...GRANT_FLAGS.values], booleans: ['all', 'json', ...GRANT_FLAGS.booleans] });
  const [action, id] = args.positionals;
  if (!action) throw usage('missing an action: list, show, approve, deny, grants or revoke');
  const config = stateConfig(args);
  const state = await openApprovalState(config);
  const approvals = state.approvals.useApproverGroups(config.approvals.groups);
  try {
    switch (action) {
      case 'list': {
        const records = await approvals.list(args.flags.all ? undefined : 'pending');
        if (args.flags.json) console.log(JSON.stringify(records.map(listed), null, 2));
        else if (records.length === 0) console.log(args.flags.all ? 'no approvals' : 'no pending approvals');
        else for (const r of records) console.log(summary(r));
        return 0;
      }
      case 'show': {
        const record = await requireRecord(approvals.get(need(id)), id!);
        console.log(args.flags.json ? JSON.stringify(record, null, 2) : details(record));
        return 0;
      }
      case 'approve':
      case 'deny': {
        const actor = flag(args, 'as') ?? userInfo().username;
        const reason = flag(args, 'reason');
        if (action === 'approve' && args.flags.grant) {
          const pending = await requireRecord(approvals.get(need(id)), id!);
          const { approval, grant } = await approvals.approveWithGrant(pending.id, actor, grantRequestOf(args, pending), reason);
          console.log(`${outcome(approval)}\n${grantLine(grant)}`);
          return 0;
        }
        const edited = flag(args, 'args');
        if (action === 'approve' && edited !== undefined) {
          console.log(outcome(await approvals.approveWithEdit(need(id), actor, parseJson(edited), reason)));
          return 0;
        }
        const record = action === 'approve' ? await approvals.approve(need(id), actor, reason) : await approvals.deny(need(id), actor, reason);
        console.log(outcome(record));
        return 0;
      }
      case 'grants':
        await listGrants(approvals, args);
        return 0;
      case 'revoke': {
        const grant = await approvals.grants.revoke(need(id), flag(args, 'as') ?? userInfo().username);
        console.log(`${grant.id} is revoked: matching calls are asked about again`);
        return 0;
      }
      default:
        throw usage(`unknown action "${action}"`);
    }
  } finally {
    await state.close();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usage(`--args takes a JSON object: ${(err as Error).message}`);
  }
}

function need(id: string | undefined): string {
  if (!id) throw usage('missing the approval ID');
  return id;
}

async function requireRecord(found: Promise<ApprovalRecord | undefined>, id: string): Promise<ApprovalRecord> {
  const record = await found;
  if (!record) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`);
  return record;
}

/** Two lines: the approval, and what the call would do (its redacted arguments' summary), indented under it. */
function summary(r: ApprovalRecord): string {
  const votes = r.state === 'pending' && r.quorum > 1 ? `, ${r.votes.length}/${r.quorum} approvals` : '';
  return `${r.id}  ${r.state.padEnd(9)} ${r.tool}  by ${r.principal}  (${r.reason}${votes}; expires ${new Date(r.expiresAt).toISOString()})\n    ${argsSummaryOf(r)}`;
}

/** A record as `list --json` prints it: the summary instead of the whole arguments (`show --json` has those). */
function listed(r: ApprovalRecord): Record<string, unknown> {
  const { redactedArgs: _whole, ...rest } = r;
  return { ...rest, argsSummary: argsSummaryOf(r) };
}

/** The whole redacted arguments, or why they are not all there. */
function argumentsOf(r: ApprovalRecord): string[] {
  const heading = 'arguments, whole, with secrets and the policy\'s redact.args masked:';
  const note = r.argsCut && argsCutNote(r.argsCut);
  if (!r.redactedArgs) return [note ?? 'an approval from an older version keeps only a preview of its arguments:', r.argsPreview];
  return [...(note ? [note] : []), heading, JSON.stringify(r.redactedArgs, null, 2)];
}

function outcome(r: ApprovalRecord): string {
  if (r.state === 'pending') return `${r.id} has ${r.votes.length} of ${r.quorum} approvals (${r.votes.map((v) => v.actor).join(', ')}); it stays pending until ${r.quorum} distinct approvers approve`;
  if (r.state === 'approved') return `${r.id} is now approved: ${r.onApprove === 'execute' ? 'Gatehouse runs the call and keeps its result for the retry' : 'the same call, retried, will run once'}`;
  return `${r.id} is now ${r.state}`;
}

function approversOf(r: ApprovalRecord): string {
  if (r.approvers === undefined) return 'anyone who can reach an approval channel';
  if (r.approvers.length === 0) return 'nobody (the matching rules name no approver in common)';
  const groups = r.approverGroups ?? {};
  return r.approvers.map((a) => (a.startsWith('group:') && groups[a.slice(6)] ? `${a} (${groups[a.slice(6)].join(', ') || 'empty'} when asked)` : a)).join(', ');
}

function details(r: ApprovalRecord): string {
  return [
    `approval   ${r.id}`,
    `state      ${r.state}`,
    `tool       ${r.tool} (upstream ${r.server})`,
    `caller     ${r.principal} (tenant ${r.tenant})`,
    `reason     ${r.reason}`,
    `rules      ${r.ruleIds.join(', ') || '(default)'}`,
    `arguments  ${argsSummaryOf(r)}`,
    `created    ${new Date(r.createdAt).toISOString()}`,
    `expires    ${new Date(r.expiresAt).toISOString()}`,
    `approvers  ${approversOf(r)}`,
    `self       ${r.selfApprove ? `${r.principal} may approve their own call` : `${r.principal} may not approve their own call (but may deny it)`}`,
    `quorum     ${r.quorum} distinct approver${r.quorum === 1 ? '' : 's'}; votes so far: ${r.votes.length ? r.votes.map((v) => v.actor).join(', ') : 'none'}`,
    `on approve ${r.onApprove === 'execute' ? 'Gatehouse runs the call and keeps the result for one retry' : 'the call runs when the client retries it'}`,
    `binding    args ${r.argsDigest}, tool ${r.toolDigest}, policy ${r.policySnapshot}`,
    ...(r.edit ? [`edited     by ${r.edit.by}: runs with ${JSON.stringify(r.edit.changes)} set`] : []),
    ...(r.claimedBy ? [`used by    job ${r.claimedBy.jobId} under policy ${r.claimedBy.policySnapshot}`] : []),
    ...(r.execution ? [`execution  ${r.execution.finishedAt === undefined ? 'running' : r.execution.error ? `failed: ${r.execution.error.code}` : `done (${r.execution.resultRef})`}${r.execution.takenBy ? `, taken by job ${r.execution.takenBy}` : ''}`] : []),
    'history',
    ...r.history.map((t) => `  ${new Date(t.at).toISOString()}  ${(t.vote ? 'vote' : t.state).padEnd(9)} by ${t.actor}${t.via === 'link' ? ' (by link)' : ''}${t.reason ? `: ${t.reason}` : ''}${t.code ? ` [${t.code}]` : ''}`),
    ...argumentsOf(r),
    ...(r.state === 'pending' && !r.grant ? [`to grant matching calls: --grant --when '${prefilledCondition(r.redactedArgs)}'`] : []),
  ].join('\n');
}
