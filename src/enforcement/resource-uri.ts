/**
 * Why a resource URI is refused before any policy sees it, or undefined. Policies match URIs by glob, so a URI that
 * names one place to a glob and another to the server that resolves it (`file:///work/../etc/passwd` matches
 * `file:///work/*`) must not reach either: dot segments, also percent-encoded, backslashes and control characters
 * are refused, as `pathUnder` refuses them in paths.
 */
export function resourceUriProblem(uri: string): string | undefined {
  if (uri.length === 0) return 'the URI is empty';
  if (/[\u0000-\u001f\u007f]/.test(uri)) return 'the URI holds a control character';
  if (uri.includes('\\')) return 'the URI holds a backslash, which some servers read as a path separator';
  const path = uri.replace(/[?#].*$/s, '');
  for (const segment of path.split('/')) {
    const decoded = segment.replace(/%2e/gi, '.');
    if (decoded === '.' || decoded === '..') return 'the URI holds a dot segment (. or ..), which would name another resource than the one it reads as';
    if (/%2f|%5c/i.test(segment)) return 'the URI holds an encoded slash or backslash';
  }
  return undefined;
}
