/**
 * Globs for names (servers, tools, tenants, principals): `*` matches any run of characters, `?` one character,
 * everything else is literal. Matched with one backtrack point, O(name × pattern) at worst: a regex would
 * backtrack polynomially on a pattern with several stars (`*a*a*a*b`), and names come from callers and upstreams.
 */
export function compileGlob(pattern: string): (name: string) => boolean {
  if (pattern === '*') return () => true;
  if (!/[*?]/.test(pattern)) return (name) => name === pattern;
  return (name) => wildcardMatch(pattern, name);
}

/**
 * `*` and `?` wildcards over UTF-16 code units, with a single backtrack point (the last star): a later star
 * subsumes what an earlier one could have matched, so retrying only the last one is enough.
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const c = p < pattern.length ? pattern.charCodeAt(p) : -1;
    if (c === 42 /* * */) {
      starP = p++;
      starT = t;
    } else if (c !== -1 && (c === 63 /* ? */ || c === text.charCodeAt(t))) {
      p++;
      t++;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 42) p++;
  return p === pattern.length;
}
