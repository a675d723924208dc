import { posix } from 'node:path';

/**
 * Lexical path checks, shared by CEL's `pathUnder()`/`glob()` and the `paths` constraint. Nothing touches the
 * file system: `.` and `..` are resolved and `//` collapsed on the text alone (`/..` stays `/`), so a symlink
 * is the upstream's business. Two readings a downstream might apply are checked as well: percent-decoding
 * (`%2e%2e`, `%2f`, also double-encoded) and `\` as a separator. When one of them would change the answer,
 * the check throws instead of picking one, so a `deny` rule matches and an `allow` rule does not.
 */

/** `.` and `..` resolved, `//` collapsed, no trailing slash (except the root). Relative paths stay relative. */
export function normalizePath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

/** True when `path` is `dir` or lies below it. A relative path is never under an absolute directory. */
export function pathUnder(path: string, dir: string): boolean {
  if (!dir.startsWith('/')) return false;
  const base = normalizePath(dir);
  return unambiguous(path, (normal) => isUnder(normal, base));
}

/** Matches a path against a path glob (see `compilePathGlob`), after lexical normalisation. */
export function pathGlob(path: string, pattern: string): boolean {
  const matcher = cachedGlob(pattern);
  return unambiguous(path, matcher);
}

function isUnder(normal: string, base: string): boolean {
  if (!normal.startsWith('/')) return false;
  return base === '/' || normal === base || (normal.startsWith(base) && normal.charCodeAt(base.length) === 47 /* / */);
}

const ALTERED = /%[0-9a-f]{2}|\\/i;

/** Applies a test to the normalised path, and throws when another reading of the same text answers otherwise. */
function unambiguous(path: string, test: (normal: string) => boolean): boolean {
  if (path.includes('\0')) throw new Error('the path contains a NUL character');
  const answer = test(normalizePath(path));
  if (!ALTERED.test(path)) return answer;
  const decoded = percentDecoded(path);
  for (const view of [decoded, path.replaceAll('\\', '/'), decoded.replaceAll('\\', '/')]) {
    if (test(normalizePath(view)) !== answer) {
      throw new Error(`the path ${JSON.stringify(path)} means something else once percent-decoded or with \\ read as a separator`);
    }
  }
  return answer;
}

/** Decodes %XX byte by byte until nothing changes, so double encoding (`%252e`) is seen through too. */
function percentDecoded(path: string): string {
  let current = path;
  for (let round = 0; round < 4; round++) {
    const next = current.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (next === current) {
      if (next.includes('\0')) throw new Error('the path contains an encoded NUL character');
      return next;
    }
    current = next;
  }
  throw new Error('the path is percent-encoded more than three times over');
}

type SegmentMatcher = ((segment: string) => boolean) | '**';

/**
 * Path globs: `*` matches any run within one segment, `?` one character other than `/`, and a `**` segment any
 * number of segments, none included (so `/ws/**` matches `/ws` itself). Everything else is literal. Matching is
 * segment by segment with a single backtrack point, O(path × pattern), never exponential.
 */
export function compilePathGlob(pattern: string): (normalPath: string) => boolean {
  const segments: SegmentMatcher[] = normalizePattern(pattern).split('/').map((s) => (s === '**' ? '**' : compileSegment(s)));
  return (normalPath) => matchSequence(segments, normalPath.split('/'), (m, s) => m !== '**' && m(s), (m) => m === '**');
}

/** As the `paths` constraint reads patterns: `\\` is a separator, and one starting with neither `/` nor `**` is anchored at `/`. */
function normalizePattern(pattern: string): string {
  const slashed = pattern.replaceAll('\\', '/');
  const anchored = slashed.startsWith('/') || slashed.startsWith('**') ? slashed : `/${slashed}`;
  const collapsed = anchored.replace(/\/{2,}/g, '/');
  return collapsed.length > 1 && collapsed.endsWith('/') ? collapsed.slice(0, -1) : collapsed;
}

function compileSegment(segment: string): (s: string) => boolean {
  if (!/[*?]/.test(segment)) return (s) => s === segment;
  const chars = [...segment];
  return (s) => matchSequence(chars, [...s], (p, c) => p === '?' || p === c, (p) => p === '*');
}

/**
 * Wildcard matching with one backtrack point (the last star): linear in practice, O(n × m) at worst. Used for
 * characters within a segment and for segments within a path.
 */
function matchSequence<P, T>(pattern: readonly P[], items: readonly T[], same: (p: P, item: T) => boolean, isStar: (p: P) => boolean): boolean {
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < items.length) {
    if (p < pattern.length && isStar(pattern[p])) {
      starP = p++;
      starI = i;
    } else if (p < pattern.length && same(pattern[p], items[i])) {
      p++;
      i++;
    } else if (starP >= 0) {
      p = starP + 1;
      i = ++starI;
    } else {
      return false;
    }
  }
  while (p < pattern.length && isStar(pattern[p])) p++;
  return p === pattern.length;
}

const globs = new Map<string, (normalPath: string) => boolean>();

function cachedGlob(pattern: string): (normalPath: string) => boolean {
  let matcher = globs.get(pattern);
  if (!matcher) {
    if (globs.size > 1000) globs.clear(); // patterns come from policies (usually literals); bound the memo anyway
    matcher = compilePathGlob(pattern);
    globs.set(pattern, matcher);
  }
  return matcher;
}
