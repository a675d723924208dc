/** `gatehouse approvals approve ID --grant`, `approvals grants` and `approvals revoke ID`: grants from the command line. */
import type { ApprovalRecord } from '../../protocol/approval-record.ts';
import type { ApprovalService } from '../../approvals/service.ts';
import { prefilledCondition, type GrantRequest } from '../../approvals/grant.ts';
import { parseDuration } from '../../config/duration.ts';
import { flag, usage, type ParsedArgs } from '../args.ts';

export const GRANT_FLAGS = { values: ['when', 'scope', 'for'], booleans: ['grant'] } as const;
const DEFAULT_GRANT = '30m';

export const GRANTS_HELP = `Grants ("this and matching calls"):
  gatehouse approvals approve ID --grant [--when CEL] [--scope session|principal] [--for 30m]
  gatehouse approvals grants [--all] [--json]
  gatehouse approvals revoke GRANT_ID [--as NAME]
  --when            the condition on args a later call must meet (default: each argument equal to this call's,
                    as \`show\` prints it); compiled like a rule's \`when\`
  --scope           session: this MCP session only (the default when the call had one); principal: every session
  --for             how long, 15m to 8h (default ${DEFAULT_GRANT})`;

/** The grant the approver asks for with `--grant`; `checkGrantRequest` has the last word. */
export function grantRequestOf(args: ParsedArgs, approval: ApprovalRecord): GrantRequest {
  const text = flag(args, 'for') ?? DEFAULT_GRANT;
  const durationMs = parseDuration(text);
  if (durationMs === undefined) throw usage(`--for takes a duration such as 30m or 2h, not ${JSON.stringify(text)}`);
  return {
    condition: flag(args, 'when') ?? prefilledCondition(approval.redactedArgs),
    scope: (flag(args, 'scope') ?? (approval.sessionId ? 'session' : 'principal')) as GrantRequest['scope'],
    durationMs,
  };
}

export async function listGrants(approvals: ApprovalService, args: ParsedArgs): Promise<void> {
  const grants = (await approvals.grants.list()).filter((g) => args.flags.all || g.state === 'approved');
  if (args.flags.json) console.log(JSON.stringify(grants, null, 2));
  else if (grants.length === 0) console.log(args.flags.all ? 'no grants' : 'no live grants');
  else for (const g of grants) console.log(grantLine(g));
}

export function grantLine(g: ApprovalRecord): string {
  const state = g.state === 'approved' ? 'live' : g.state === 'cancelled' ? 'revoked' : g.state;
  const scope = g.grant?.scope === 'session' ? `session ${g.grant.sessionId}` : `principal ${g.principal}`;
  return `${g.id}  ${state.padEnd(8)} ${g.tool}  for ${scope}  by ${g.grant?.grantedBy}  until ${new Date(g.expiresAt).toISOString()}\n    when ${g.grant?.condition}`;
}
