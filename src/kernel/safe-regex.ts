/**
 * Load-time screening of the regexes a policy hands to the executor (`redact: ["/sk-[A-Za-z0-9]{20,}/"]`).
 * JavaScript regexes backtrack, so a pattern with an ambiguous repetition can take exponential time on a
 * crafted input. Refused: backreferences (`\1`, `\k<name>`), an unbounded repeat of a group that repeats or
 * alternates inside (`(a+)+`, `(a|ab)*`, `(\d{2})*`: star height above 1), and any repeat of a group with an
 * unbounded quantifier inside (`(a+){3}`). `(\d{3}-){2}` and `(?:ab)+` pass. Not detected: polynomial shapes
 * such as `\d*\d*\d*x`; whoever applies the regexes bounds the text. Also refused: a regex that matches the
 * empty string, which redaction would apply between every two characters.
 */

export const MAX_REGEX_LENGTH = 512;
/** Field paths (`auth.token`) may have at most this many segments. */
export const MAX_FIELD_SEGMENTS = 255;
const FLAGS = /^[imsu]*$/;

/**
 * Why a `redact` entry is refused, or undefined: a `/regex/flags` (see `unsafeRegexReason`), else a field path
 * (`password`, `auth.token`, `items.*.secret`) without empty segments. Checked at load, so that a bad entry
 * cannot first show up as a failure of every call the rule applies to.
 */
export function redactEntryProblem(text: string): string | undefined {
  if (text.startsWith('/')) return unsafeRegexReason(text);
  const segments = text.split('.');
  if (segments.length > MAX_FIELD_SEGMENTS) return `a field path may have at most ${MAX_FIELD_SEGMENTS} segments`;
  if (segments.some((s) => s === '')) return `the field path ${JSON.stringify(text)} has an empty segment (write auth.token, items.*.secret)`;
  return undefined;
}

/** `/body/flags` → its parts, or undefined when the text is not written as a regex. */
export function regexParts(text: string): { body: string; flags: string } | undefined {
  if (!text.startsWith('/')) return undefined;
  const end = text.lastIndexOf('/');
  if (end <= 0) return undefined;
  return { body: text.slice(1, end), flags: text.slice(end + 1) };
}

/** Why a `/body/flags` regex is refused, or undefined when it is accepted. */
export function unsafeRegexReason(text: string): string | undefined {
  const parts = regexParts(text);
  if (!parts || parts.body === '') return 'a regex is written /pattern/flags';
  if (text.length > MAX_REGEX_LENGTH) return `a regex may be at most ${MAX_REGEX_LENGTH} characters`;
  if (!FLAGS.test(parts.flags)) return `regex flags may only be i, m, s and u (got "${parts.flags}")`;
  let regex: RegExp;
  try {
    regex = new RegExp(parts.body, parts.flags);
  } catch (err) {
    return `invalid regex: ${(err as Error).message}`;
  }
  const shape = shapeProblem(parts.body);
  if (shape) return shape;
  // Redaction replaces every match: one that can be empty would put the marker between every two characters.
  if (regex.test('')) return 'a redact regex must not match the empty string (write + rather than *, or {1,} rather than {0,})';
  return undefined;
}

interface Frame {
  /** The group contains an unbounded quantifier (`*`, `+`, `{n,}`). */
  unbounded: boolean;
  /** The group contains a bounded quantifier or an alternation. */
  branches: boolean;
}

const PLAIN: Frame = { unbounded: false, branches: false };

/**
 * An unbounded repeat of a group that repeats or alternates inside, or any repeat of a group with an unbounded
 * quantifier inside, can split the same text in exponentially (or polynomially, to a high degree) many ways.
 */
function shapeProblem(body: string): string | undefined {
  const stack: Frame[] = [{ unbounded: false, branches: false }];
  let last: Frame | undefined; // the atom a quantifier would apply to: PLAIN, or a group just closed
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    const top = stack[stack.length - 1];
    if (c === '\\') {
      const next = body[i + 1] ?? '';
      if (/[1-9]/.test(next) || next === 'k') return 'backreferences are not allowed in a regex (they can backtrack without bound)';
      i += next === 'u' || next === 'x' || next === 'c' || next === 'p' || next === 'P' ? skipEscape(body, i) : 1;
      last = PLAIN;
    } else if (c === '[') {
      i = classEnd(body, i);
      last = PLAIN;
    } else if (c === '(') {
      stack.push({ unbounded: false, branches: false });
      if (body[i + 1] === '?') i += body[i + 2] === '<' && body[i + 3] !== '=' && body[i + 3] !== '!' ? body.indexOf('>', i) - i : body[i + 2] === '<' ? 3 : 2;
      last = undefined;
    } else if (c === ')') {
      const group = stack.pop()!;
      const parent = stack[stack.length - 1];
      parent.unbounded ||= group.unbounded;
      parent.branches ||= group.branches;
      last = group;
    } else if (c === '|') {
      top.branches = true;
      last = undefined;
    } else if (c === '*' || c === '+' || c === '?' || (c === '{' && /^\{\d+(,\d*)?\}/.test(body.slice(i)))) {
      const [unbounded, repeats] = c === '{' ? braceQuantifier(body.slice(i)) : [c !== '?', c !== '?'];
      if (c === '{') i = body.indexOf('}', i);
      if (body[i + 1] === '?') i++; // lazy
      if (last && ((unbounded && (last.unbounded || last.branches)) || (repeats && last.unbounded))) {
        return 'nested quantifiers are not allowed in a regex (a repeated group that repeats or alternates inside can backtrack exponentially)';
      }
      if (unbounded) top.unbounded = true;
      else top.branches = true;
      last = PLAIN;
    } else {
      last = PLAIN;
    }
  }
  return undefined;
}

/** `{n}`, `{n,}`, `{n,m}` → [unbounded, repeats more than once]. */
function braceQuantifier(quantifier: string): [boolean, boolean] {
  const m = /^\{(\d+)(,(\d*))?\}/.exec(quantifier)!;
  if (m[2] === undefined) return [false, Number(m[1]) > 1];
  if (m[3] === '') return [true, true];
  return [false, Number(m[3]) > 1];
}

/** The offset past `\uXXXX`, `\u{…}`, `\xXX`, `\cX`, `\p{…}`. */
function skipEscape(body: string, i: number): number {
  const kind = body[i + 1];
  if (body[i + 2] === '{') return body.indexOf('}', i) - i;
  if (kind === 'u') return 5;
  if (kind === 'x') return 3;
  return 2;
}

function classEnd(body: string, i: number): number {
  for (let j = i + 1; j < body.length; j++) {
    if (body[j] === '\\') j++;
    else if (body[j] === ']') return j;
  }
  return body.length;
}
