// Globs over absolute, lexically normalised paths:
//   `*` and `?` stay within one segment; `**` spans any number of whole segments, including none, so
//   `/ws/**` admits `/ws` itself and `**/.ssh/**` admits `/home/u/.ssh`.
//   A pattern that starts with neither `/` nor `**` is anchored at `/`; `\` in a pattern is a separator.
// Compiled once per pattern and cached: patterns come from the policy, a small and stable set.

export interface PathGlob {
  /** Case-sensitive: how `allow` and `deny` match. */
  exact: RegExp;
  /** Case-insensitive: a second chance for `deny`, against mixed-case paths on case-insensitive filesystems. */
  folded: RegExp;
}

const cache = new Map<string, PathGlob>();
const CACHE_LIMIT = 4096;

export function compilePathGlob(pattern: string): PathGlob {
  let glob = cache.get(pattern);
  if (!glob) {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    const source = `^${toRegexSource(pattern)}$`;
    glob = { exact: new RegExp(source, 'su'), folded: new RegExp(source, 'siu') };
    cache.set(pattern, glob);
  }
  return glob;
}

function toRegexSource(pattern: string): string {
  let p = pattern.replace(/\\/g, '/');
  if (!p.startsWith('/') && !p.startsWith('**')) p = `/${p}`;
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*' && (i === 0 || p[i - 1] === '/') && (i + 2 === p.length || p[i + 2] === '/')) {
      if (i + 2 === p.length) {
        // A trailing `/**` also admits the directory itself: drop the slash just written, make the rest optional.
        out = out.endsWith('/') ? `${out.slice(0, -1)}(?:/.*)?` : `${out}.*`;
        i++;
      } else {
        out += '(?:.*/)?'; // `**/`: any run of whole segments, including none
        i += 2;
      }
    } else if (c === '*') {
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else {
      out += /[.+^${}()|[\]\\]/.test(c) ? `\\${c}` : c;
    }
  }
  return out;
}
