/**
 * A service URL fit for a log line, a banner or an error: whatever stands between `//` and the last `@` (user and
 * password; a password may itself hold `@` or `/`) becomes `***`. NATS and Redis URLs carry no `@` after the host.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('//');
  const at = url.lastIndexOf('@');
  return start < 0 || at < start ? url : `${url.slice(0, start + 2)}***${url.slice(at)}`;
}
