/**
 * The part of npm's semver ranges a pack's `requires` needs: comparators (`>=0.1.0 <2.0.0`), `^`, `~`, x-ranges
 * (`0.1.x`) and `||`. Pre-release versions compare below their release, as in semver.
 */
type Version = [number, number, number, string];

function parse(text: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] ?? ''] : undefined;
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  if (a[3] === b[3]) return 0;
  if (a[3] === '') return 1;
  if (b[3] === '') return -1;
  return a[3] < b[3] ? -1 : 1;
}

/** One comparator as the [lowest allowed (inclusive), upper bound (exclusive)] it means, or a plain comparison. */
function comparator(token: string): ((v: Version) => boolean) | undefined {
  const m = /^(>=|<=|>|<|=|\^|~)?(.+)$/.exec(token);
  if (!m) return undefined;
  const [, op = '=', rest] = m;
  const parts = rest.split('.');
  if (parts.length === 3 && !parts.some((p) => /^[x*]$/i.test(p))) {
    const base = parse(rest);
    if (!base) return undefined;
    const [major, minor, patch] = base;
    const below = (upper: Version) => (v: Version) => compare(v, base) >= 0 && compare(v, upper) < 0;
    switch (op) {
      case '>=': return (v) => compare(v, base) >= 0;
      case '>': return (v) => compare(v, base) > 0;
      case '<=': return (v) => compare(v, base) <= 0;
      case '<': return (v) => compare(v, base) < 0;
      case '=': return (v) => compare(v, base) === 0;
      case '~': return below([major, minor + 1, 0, '']);
      default: return below(major > 0 ? [major + 1, 0, 0, ''] : minor > 0 ? [0, minor + 1, 0, ''] : [0, 0, patch + 1, '']);
    }
  }
  // An x-range: `1.x`, `1.2.x`, `*`.
  if (op !== '=' || !/^(\d+|[x*])(\.(\d+|[x*])){0,2}$/i.test(rest)) return undefined;
  const fixed = parts.filter((p) => /^\d+$/.test(p)).map(Number);
  return (v) => fixed.every((n, i) => v[i] === n) && v[3] === '';
}

/** Whether `version` satisfies `range`; undefined when the range cannot be read. */
export function satisfies(version: string, range: string): boolean | undefined {
  const v = parse(version);
  if (!v) return undefined;
  let any = false;
  for (const alternative of range.split('||')) {
    const tests = alternative.trim().split(/\s+/).filter(Boolean).map(comparator);
    if (tests.length === 0 || tests.some((t) => t === undefined)) return undefined;
    if (tests.every((t) => t!(v))) any = true;
  }
  return any;
}
