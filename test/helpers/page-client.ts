import type { Harness } from './gateway-harness.ts';
import { baseOf } from './approvers.ts';

/** What a page request answered, redirects not followed. */
export interface PageAnswer {
  status: number;
  headers: Headers;
  html: string;
  location: string | null;
}

/**
 * A minimal browser for the approval pages over fetch: it keeps cookies, posts forms, and sends what a browser
 * would (an `Origin: null` form post, since the pages send Referrer-Policy: no-referrer).
 */
export class PageClient {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly h: Harness) {}

  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  setCookie(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  get(path: string, headers: Record<string, string> = {}): Promise<PageAnswer> {
    return this.request('GET', path, undefined, headers);
  }

  post(path: string, form: Record<string, string>, headers: Record<string, string> = { origin: 'null' }): Promise<PageAnswer> {
    return this.request('POST', path, new URLSearchParams(form).toString(), { 'content-type': 'application/x-www-form-urlencoded', ...headers });
  }

  /** Signs in with an API key through the login form; returns the login POST's answer. */
  async login(key: string): Promise<PageAnswer> {
    const form = await this.get('/approvals/login');
    return this.post('/approvals/login', { csrf: csrfOf(form.html), next: '', key });
  }

  private async request(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<PageAnswer> {
    const response = await fetch(`${baseOf(this.h)}${path}`, {
      method,
      redirect: 'manual',
      headers: { ...(this.cookies.size ? { cookie: this.cookieHeader } : {}), ...headers },
      ...(body !== undefined ? { body } : {}),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return { status: response.status, headers: response.headers, html: await response.text(), location: response.headers.get('location') };
  }
}

/** A CSRF token on a page: the page's own form's (login, decision), or the header's logout form's. */
export function csrfOf(html: string, form: 'page' | 'logout' = 'page'): string {
  const tokens = [...html.matchAll(/name="csrf" value="([^"]+)"/g)].map((m) => m[1]);
  const token = form === 'logout' ? tokens[0] : tokens.at(-1);
  if (!token) throw new Error('no CSRF token on the page');
  return token;
}

/** The GH_ERR_* code a page shows for a refusal or failure (`… (GH_ERR_CSRF)`), if any. */
export function codeOn(answer: PageAnswer): string | undefined {
  return /\b(GH_ERR_[A-Z_]+)\b/.exec(answer.html)?.[1];
}
