import { isSignatureOf, signatureOf } from '../approvals/signing.ts';

export interface ApproverSession {
  principal: string;
  tenant: string;
  expiresAt: number;
  /** The session's signature: what CSRF tokens are bound to, so a new login makes the old tokens useless. */
  id: string;
}

export interface SessionCookieOptions {
  /** How long a login lasts (ms). */
  ttlMs: number;
  /** Sent only over HTTPS: set when the pages are served at an https:// public URL. */
  secure: boolean;
  now: () => number;
}

export const SESSION_COOKIE = 'gatehouse_approver';

/**
 * A browser approver's login: `base64url([principal, tenant, expiresAt]).base64url(HMAC)`, in an HttpOnly,
 * SameSite=Strict cookie. Nothing is stored server side, so a restart, or another replica with the same key,
 * accepts it; the key never leaves the server, so the cookie cannot be forged or extended.
 */
export class SessionCookies {
  constructor(
    private readonly key: Buffer,
    private readonly options: SessionCookieOptions,
  ) {}

  /** The Set-Cookie header value of a new session. */
  issue(principal: string, tenant: string): string {
    const payload = Buffer.from(JSON.stringify([principal, tenant, this.options.now() + this.options.ttlMs])).toString('base64url');
    return this.header(`${payload}.${signatureOf(this.key, payload)}`, Math.floor(this.options.ttlMs / 1000));
  }

  /** The Set-Cookie header value that ends the session in the browser. */
  clear(): string {
    return this.header('', 0);
  }

  /** The valid, unexpired session in a Cookie header, if any. */
  read(cookieHeader: string | undefined): ApproverSession | undefined {
    const value = readCookie(cookieHeader, SESSION_COOKIE);
    const dot = value?.lastIndexOf('.') ?? -1;
    if (!value || dot < 1) return undefined;
    const payload = value.slice(0, dot);
    if (!isSignatureOf(this.key, payload, value.slice(dot + 1))) return undefined;
    let fields: unknown;
    try {
      fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (!Array.isArray(fields) || fields.length !== 3) return undefined;
    const [principal, tenant, expiresAt] = fields as unknown[];
    if (typeof principal !== 'string' || typeof tenant !== 'string' || typeof expiresAt !== 'number') return undefined;
    if (expiresAt <= this.options.now()) return undefined;
    return { principal, tenant, expiresAt, id: value.slice(dot + 1) };
  }

  private header(value: string, maxAgeSeconds: number): string {
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${this.options.secure ? '; Secure' : ''}`;
  }
}

/** One cookie's value from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
