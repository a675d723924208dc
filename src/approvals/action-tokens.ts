import { isSignatureOf, purposeKey, signatureOf } from './signing.ts';

export type LinkAction = 'approve' | 'deny';

/**
 * The tokens of an approval's action links: `<action>.<HMAC(key, id ‖ action)>`. A token names its action and is
 * bound to one approval id, so it is useless for any other approval or the other action; any replica with the
 * same key verifies it. Nothing is stored to mint one: single use is the link desk's claim (action-links.ts), and
 * the approval's own expiry ends it.
 */
export class ActionTokens {
  constructor(private readonly key: () => Promise<Buffer>) {}

  async mint(approvalId: string, action: LinkAction): Promise<string> {
    return `${action}.${signatureOf(await this.key(), textOf(approvalId, action))}`;
  }

  /** The action a token grants on this approval, or undefined for a token altered or minted for another approval. */
  async read(approvalId: string, token: unknown): Promise<LinkAction | undefined> {
    if (typeof token !== 'string') return undefined;
    const dot = token.indexOf('.');
    const action = token.slice(0, dot);
    if (action !== 'approve' && action !== 'deny') return undefined;
    return isSignatureOf(await this.key(), textOf(approvalId, action), token.slice(dot + 1)) ? action : undefined;
  }
}

/** The key (see purposeKey: `<dataDir>/secrets/approval-link.key` unless the config has a signing key), read on first use and kept. */
export function actionTokenKey(options: { signingKey?: string; dataDir: string }): () => Promise<Buffer> {
  let key: Promise<Buffer> | undefined;
  return () => {
    key ??= purposeKey(options, 'approval-link');
    // A failure is not kept: the next use tries the data dir again.
    key.catch(() => (key = undefined));
    return key;
  };
}

function textOf(approvalId: string, action: LinkAction): string {
  return `${approvalId}\0${action}`;
}
