import { userInfo } from 'node:os';
import { openDataDir } from '../../runtime/embedded.ts';
import type { ApprovalRecord } from '../../approvals/approval.ts';
import { GatewayError } from '../../errors.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { stateConfig, STATE_FLAGS } from '../state.ts';

export const APPROVALS_HELP = `Usage:
  gatehouse approvals list [--all] [--json]
  gatehouse approvals show ID [--json]
  gatehouse approvals approve ID [--reason TEXT] [--as NAME]
  gatehouse approvals deny ID [--reason TEXT] [--as NAME]

Works on the data dir of a running gateway (another process is fine).
  --config FILE     the gateway's config (default ./gatehouse.yaml when present)
  --data-dir DIR    the data dir directly (default for wrap: ~/.gatehouse)
  --all             list settled approvals too, not only pending ones
  --as NAME         the approver recorded in the audit trail (default: your user name)`;

export async function runApprovals(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'reason', 'as'], booleans: ['all', 'json'] });
  const [action, id] = args.positionals;
  if (!action) throw usage('missing an action: list, show, approve or deny');
  const config = stateConfig(args);
  const state = openDataDir(config.dataDir, config.approvals.ttl);
  try {
    switch (action) {
      case 'list': {
        const records = await state.approvals.list(args.flags.all ? undefined : 'pending');
        if (args.flags.json) console.log(JSON.stringify(records, null, 2));
        else if (records.length === 0) console.log(args.flags.all ? 'no approvals' : 'no pending approvals');
        else for (const r of records) console.log(summary(r));
        return 0;
      }
      case 'show': {
        const record = await requireRecord(state.approvals.get(need(id)), id!);
        console.log(args.flags.json ? JSON.stringify(record, null, 2) : details(record));
        return 0;
      }
      case 'approve':
      case 'deny': {
        const actor = flag(args, 'as') ?? userInfo().username;
        const reason = flag(args, 'reason');
        const record = action === 'approve' ? await state.approvals.approve(need(id), actor, reason) : await state.approvals.deny(need(id), actor, reason);
        console.log(`${record.id} is now ${record.state}${action === 'approve' ? ': the same call, retried, will run once' : ''}`);
        return 0;
      }
      default:
        throw usage(`unknown action "${action}"`);
    }
  } finally {
    await state.close();
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

function summary(r: ApprovalRecord): string {
  return `${r.id}  ${r.state.padEnd(9)} ${r.tool}  by ${r.principal}  (${r.reason}; expires ${new Date(r.expiresAt).toISOString()})`;
}

function details(r: ApprovalRecord): string {
  return [
    `approval   ${r.id}`,
    `state      ${r.state}`,
    `tool       ${r.tool} (upstream ${r.server})`,
    `caller     ${r.principal} (tenant ${r.tenant})`,
    `reason     ${r.reason}`,
    `rules      ${r.ruleIds.join(', ') || '(default)'}`,
    `arguments  ${r.argsPreview}`,
    `created    ${new Date(r.createdAt).toISOString()}`,
    `expires    ${new Date(r.expiresAt).toISOString()}`,
    `binding    args ${r.argsDigest}, tool ${r.toolDigest}, policy ${r.policySnapshot}`,
    'history',
    ...r.history.map((t) => `  ${new Date(t.at).toISOString()}  ${t.state.padEnd(9)} by ${t.actor}${t.reason ? `: ${t.reason}` : ''}`),
  ].join('\n');
}
