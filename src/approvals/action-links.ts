import type { Store } from '../ports.ts';
import type { ApprovalRecord } from '../protocol/approval-record.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { ActionTokens, LinkAction } from './action-tokens.ts';
import { assertUndecided, type ApprovalService } from './service.ts';

export interface ActionLinksOptions {
  approvals: Pick<ApprovalService, 'get' | 'approve' | 'deny' | 'mayAct'>;
  /** Where a link's use is claimed: the shared Store, so that replicas agree it was used. */
  claims: Store;
  tokens: ActionTokens;
  /** The principal a link acts as (`approvals.webhook.actAs`), held to the approval's rules like any approver. */
  actAs: string;
  /** The approval's page; a link is that page's `/link` with the token. */
  pageUrl: (id: string) => string | undefined;
  now: () => number;
}

/** What a link shows before it is used: the approval, what the link would do, and as whom. */
export interface LinkView {
  record: ApprovalRecord;
  action: LinkAction;
  actAs: string;
}

/** How long a used link stays remembered past its approval's expiry, so that a late reuse says "used". */
const CLAIM_GRACE_MS = 24 * 60 * 60_000;

/** The outcomes that use a link up: the approval answered. Anything else (the store down) lets it be tried again. */
const FINAL_CODES = ['GH_ERR_APPROVER_NOT_ALLOWED', 'GH_ERR_SELF_APPROVAL_FORBIDDEN', 'GH_ERR_APPROVAL_INVALID_STATE', 'GH_ERR_APPROVAL_EXPIRED', 'GH_ERR_APPROVAL_NOT_FOUND'] as const;

/**
 * The approve and deny links a notice carries, and what they do. The token is the credential: no sign-in. Links
 * of one approval work once between them (the first use is claimed in the shared Store); each acts as `actAs`
 * through the approval service, so the approval's approvers, selfApprove and quorum apply, and the history and
 * audit say it came by link.
 */
export class ActionLinks {
  constructor(private readonly options: ActionLinksOptions) {}

  get actAs(): string {
    return this.options.actAs;
  }

  /** The approval's approve and deny links, or undefined when the gateway has no page URL to put them on. */
  async linksOf(id: string): Promise<Record<LinkAction, string> | undefined> {
    const page = this.options.pageUrl(id);
    if (!page) return undefined;
    const link = async (action: LinkAction) => `${page}/link?token=${await this.options.tokens.mint(id, action)}`;
    return { approve: await link('approve'), deny: await link('deny') };
  }

  /** What a GET of the link shows. Throws the coded refusal its use would meet, and never acts. */
  async look(id: string, token: unknown): Promise<LinkView> {
    const { record, action } = await this.open(id, token);
    if ((await this.options.claims.get(claimKey(id))) !== undefined) throw used();
    assertUndecided(record);
    const refusal = this.options.approvals.mayAct(record, this.options.actAs, action);
    if (refusal) throw new GatewayError(refusal.code, refusal.reason, { data: { approvalId: id } });
    return { record, action, actAs: this.options.actAs };
  }

  /** Uses the link: claims it, then approves or denies as `actAs`. */
  async use(id: string, token: unknown): Promise<LinkView> {
    const { record, action } = await this.open(id, token);
    const { claims, approvals, actAs } = this.options;
    const ttlMs = Math.max(0, record.expiresAt - this.options.now()) + CLAIM_GRACE_MS;
    if (!(await claims.setIfAbsent(claimKey(id), action, { ttlMs }))) throw used();
    try {
      const updated = action === 'approve' ? await approvals.approve(id, actAs, undefined, { via: 'link' }) : await approvals.deny(id, actAs, undefined, { via: 'link' });
      return { record: updated, action, actAs };
    } catch (err) {
      if (!FINAL_CODES.some((code) => isGatewayError(err, code))) await claims.delete(claimKey(id)).catch(() => undefined);
      throw err;
    }
  }

  /** The approval a token is for, checked first so that a bad token learns nothing about which approvals exist. */
  private async open(id: string, token: unknown): Promise<{ record: ApprovalRecord; action: LinkAction }> {
    const action = await this.options.tokens.read(id, token);
    if (!action) throw new GatewayError('GH_ERR_APPROVAL_LINK_INVALID', 'This link is not valid: it was altered, or it belongs to another approval.', { data: { approvalId: id } });
    const record = await this.options.approvals.get(id);
    if (!record) throw new GatewayError('GH_ERR_APPROVAL_NOT_FOUND', `no approval ${id}`, { data: { approvalId: id } });
    return { record, action };
  }
}

function claimKey(id: string): string {
  return `approval-link:${id}`;
}

function used(): GatewayError {
  return new GatewayError('GH_ERR_APPROVAL_LINK_USED', "This approval's link was already used; each approval's links work once. Its page shows what happened.");
}
