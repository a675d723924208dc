import { isSignatureOf, signatureOf } from '../approvals/signing.ts';

/**
 * CSRF tokens for the approval forms: HMAC(server key, session ‖ purpose), where the purpose names the approval
 * (or the login, or the logout). A token is useless in another session, for another approval, or after the
 * session ends; nothing is stored. Another site can neither read a token (same-origin policy) nor send our
 * SameSite=Strict session cookie along with its own post.
 */
export class CsrfTokens {
  constructor(private readonly key: Buffer) {}

  mint(session: string, purpose: string): string {
    return signatureOf(this.key, `${session}\0${purpose}`);
  }

  verify(token: unknown, session: string, purpose: string): boolean {
    return isSignatureOf(this.key, `${session}\0${purpose}`, token);
  }
}

/**
 * Whether a form post's Origin (or, without one, its Referer) is this server: the Host it was sent to, or the
 * public URL's origin. `Origin: null` carries no information (our pages send `Referrer-Policy: no-referrer`,
 * and browsers then post forms with `Origin: null`), nor does a request with neither header: the token decides.
 */
export function fromThisServer(headers: { origin?: string; referer?: string; host?: string }, publicOrigin: string | undefined): boolean {
  const claimed = headers.origin ?? (headers.referer ? originOf(headers.referer) : undefined);
  if (claimed === undefined || claimed === 'null') return true;
  const own = new Set([publicOrigin, headers.host && `http://${headers.host}`, headers.host && `https://${headers.host}`].filter(Boolean).map((o) => o!.toLowerCase()));
  return own.has(claimed.toLowerCase());
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid';
  }
}
