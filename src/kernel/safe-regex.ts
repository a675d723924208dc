/**
 * Load-time screening of the regexes a policy hands to the executor (`redact: ["/sk-[A-Za-z0-9]{20,}/"]`).
 * JavaScript regexes backtrack, so a pattern with an ambiguous repetition can take exponential time on a
 * crafted input. Refused: backreferences (`\1`, `\k<name>`) and a repeated group that itself repeats or
 * alternates (`(a+)+`, `(a|ab)*`, `(\w{2,})*`: star height above 1), which is where exponential blow-ups come
 * from. Not detected: polynomial shapes such as `\d*\d*\d*x`; whoever applies the regexes bounds the text.
 */

export const MAX_REGEX_LENGTH = 512;
const FLAGS = /^[imsu]*$/;

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
  try {
    new RegExp(parts.body, parts.flags);
  } catch (err) {
    return `invalid regex: ${(err as Error).message}`;
  }
  return shapeProblem(parts.body);
}

interface Frame {
  /** The group contains a quantifier or an alternation: repeating it again can backtrack exponentially. */
  ambiguous: boolean;
}

function shapeProblem(body: string): string | undefined {
  const stack: Frame[] = [{ ambiguous: false }];
  let lastAtom: 'none' | 'plain' | 'ambiguous-group' = 'none';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\') {
      const next = body[i + 1] ?? '';
      if (/[1-9]/.test(next) || next === 'k') return 'backreferences are not allowed in a regex (they can backtrack without bound)';
      i += next === 'u' || next === 'x' || next === 'c' || next === 'p' || next === 'P' ? skipEscape(body, i) : 1;
      lastAtom = 'plain';
    } else if (c === '[') {
      i = classEnd(body, i);
      lastAtom = 'plain';
    } else if (c === '(') {
      stack.push({ ambiguous: false });
      if (body[i + 1] === '?') i += body[i + 2] === '<' && body[i + 3] !== '=' && body[i + 3] !== '!' ? body.indexOf('>', i) - i : body[i + 2] === '<' ? 3 : 2;
      lastAtom = 'none';
    } else if (c === ')') {
      const group = stack.pop()!;
      if (group.ambiguous) stack[stack.length - 1].ambiguous = true;
      lastAtom = group.ambiguous ? 'ambiguous-group' : 'plain';
    } else if (c === '|') {
      stack[stack.length - 1].ambiguous = true;
      lastAtom = 'none';
    } else if (c === '*' || c === '+' || c === '?' || (c === '{' && /^\{\d+(,\d*)?\}/.test(body.slice(i)))) {
      const repeats = c === '*' || c === '+' || (c === '{' && repeatsMoreThanOnce(body.slice(i)));
      if (c === '{') i = body.indexOf('}', i);
      if (body[i + 1] === '?') i++; // lazy
      if (repeats && lastAtom === 'ambiguous-group') return 'nested quantifiers are not allowed in a regex (a repeated group that repeats or alternates inside can backtrack exponentially)';
      stack[stack.length - 1].ambiguous = true;
      lastAtom = 'plain';
    } else {
      lastAtom = 'plain';
    }
  }
  return undefined;
}

function repeatsMoreThanOnce(quantifier: string): boolean {
  const m = /^\{(\d+)(,(\d*))?\}/.exec(quantifier)!;
  if (m[2] === undefined) return Number(m[1]) > 1;
  return m[3] === '' || Number(m[3]) > 1;
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
