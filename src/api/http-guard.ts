import { timingSafeEqual, createHash } from 'node:crypto';
import type { Caller } from '../protocol/call.ts';

export interface HttpGuardOptions {
  host: string;
  port: number;
  allowedHosts: string[];
  allowedOrigins: string[];
  apiKeys: { key: string; principal: string; tenant: string }[];
  /** Who calls when no API keys are configured. */
  anonymous: Caller;
  /** No anonymous caller even without keys: `auth.oauth` is on, so a caller brings a key or a token. */
  credentialsRequired?: boolean;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
/** `Bearer <key>`: the scheme in any case (RFC 9110), spaces or tabs around the key tolerated. */
const BEARER = /^[ \t]*bearer[ \t]+(\S(?:.*\S)?)[ \t]*$/i;

/**
 * The checks every HTTP request passes before any MCP handling: DNS-rebinding protection (a browser page on
 * another site must not reach a gateway bound to loopback) and API-key authentication when keys are set.
 */
export class HttpGuard {
  private readonly hosts: Set<string> | undefined;
  private readonly origins: Set<string>;
  private readonly keys: { digest: Buffer; caller: Caller }[];

  constructor(private readonly options: HttpGuardOptions) {
    const loopbackBound = LOOPBACK.has(options.host);
    const names = loopbackBound ? ['127.0.0.1', 'localhost', '[::1]'] : [options.host];
    this.hosts =
      loopbackBound || options.allowedHosts.length > 0
        ? new Set([...names.flatMap((n) => [`${n}:${options.port}`, n]), ...options.allowedHosts].map((h) => h.toLowerCase()))
        : undefined; // bound to a public address with no list: the operator's proxy owns Host checks
    this.origins = new Set(
      [...names.flatMap((n) => [`http://${n}:${options.port}`, `https://${n}:${options.port}`]), ...options.allowedOrigins].map((o) => o.toLowerCase()),
    );
    this.keys = options.apiKeys.map((k) => ({ digest: sha256(k.key), caller: { principal: k.principal, tenant: k.tenant } }));
  }

  /** Undefined if Host and Origin are acceptable; otherwise what is wrong. */
  checkOrigin(host: string | undefined, origin: string | undefined): string | undefined {
    if (this.hosts && (!host || !this.hosts.has(host.toLowerCase()))) return `Host ${host ?? '(none)'} is not allowed`;
    if (origin && !this.origins.has(origin.toLowerCase())) return `Origin ${origin} is not allowed`;
    return undefined;
  }

  /** The caller behind the request's credentials; undefined when keys are configured and none matches. */
  authenticate(authorization: string | undefined, apiKeyHeader: string | undefined): Caller | undefined {
    if (this.keys.length === 0) return this.options.credentialsRequired ? undefined : { ...this.options.anonymous };
    const presented = apiKeyHeader ?? bearerToken(authorization);
    if (!presented) return undefined;
    const digest = sha256(presented);
    // Compare digests in constant time, and look at every key, so timing reveals nothing about them.
    let found: Caller | undefined;
    for (const key of this.keys) if (timingSafeEqual(key.digest, digest)) found = key.caller;
    return found ? { ...found } : undefined;
  }
}

/** The credential of an `Authorization: Bearer …` header, if that is what it is. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();
