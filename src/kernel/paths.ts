/**
 * Lexical path checks: the one implementation behind CEL's `pathUnder()`/`glob()` and the `paths` constraint
 * (enforcement/paths.ts). Nothing touches the file system: Gatehouse sees the string the tool will receive, not
 * the tool's disk, so a symlink is the tool's sandbox to guard.
 *
 * `readPath` reads a path every way a tool might, each resolved against `/` (`.`, `..` and empty segments
 * resolved on the text, `..` never above `/`):
 * - as written, with `/` the only separator (POSIX);
 * - with `\` a separator too and each segment's trailing dots and spaces dropped, as Windows reads it (`.. ` is
 *   `..`, `.ssh.` is `.ssh`);
 * - both again after percent-decoding, repeated until stable (`%2e`, `%252e`), for tools that decode;
 * - for a `file:` URL, its path.
 * It refuses (throws) NUL, written or encoded; percent-encoding that is not UTF-8 (a lenient decoder reads the
 * overlong `%c0%ae` as `.`); encoding that hides a separator or a `..`; more than 8 layers of encoding; and a
 * `file:` URL naming another host. A relative path (`notes.txt`, `~/x`, `C:\x`, or a `file:` URL that a tool
 * takes as a path) names something that depends on the tool's working directory, which Gatehouse does not know:
 * checking it against a pattern anchored at `/` throws as well.
 *
 * CEL's helpers throw unless every reading gives the same answer, so a `deny` rule matches and an `allow` rule
 * does not; the constraint wants every reading to pass.
 */

import { GatewayError } from '../errors.ts';
import { compileGlob } from './glob.ts';
import { keepingLastReading } from './last-answer.ts';

/** The readings of one path argument. */
export interface PathReading {
  /** Absolute and normalised, one per distinct reading; the first is the path as written, read the POSIX way. */
  readonly forms: readonly string[];
  /** Written relative: what it names depends on the tool's working directory. */
  readonly relative: boolean;
}

/** A compiled path glob (see `compilePathGlob`). */
export interface PathPattern {
  /** Anchored at `/` (and not `/**`): a relative path cannot be checked against it. */
  readonly anchored: boolean;
  matches(normalPath: string): boolean;
}

export const RELATIVE_PATH = 'it is relative, so what it names depends on the working directory of the tool; use an absolute path';
const MAX_DECODE_ROUNDS = 8;
const SEPARATOR = /[/\\]/;

// What `readPath` and the CEL helpers throw: GH_ERR_PATH_DENIED, with a stable `data.reason` saying why. Conditions
// meet some of these routinely (a relative path), and capturing a stack costs microseconds, so each is built once.
// The messages never quote the path: condition errors are recorded in the audit trail, and the path may hold what
// `redact` hides.
const problem = (reason: string, message: string) => new GatewayError('GH_ERR_PATH_DENIED', message, { data: { reason } });
const NUL = problem('nul', 'it contains a NUL character');
const ENCODED_NUL = problem('encoded-nul', 'it contains an encoded NUL character');
const HIDDEN = problem('hidden-by-encoding', 'its percent-encoding hides a separator or `..`');
const NOT_UTF8 = problem('not-utf8', 'its percent-encoding is not valid UTF-8');
const TOO_ENCODED = problem('too-encoded', 'it is percent-encoded too many times over');
const BAD_FILE_URL = problem('bad-file-url', 'it is not a valid file: URL');
const REMOTE_FILE_URL = problem('remote-file-url', 'it is a file: URL on another host');
const RELATIVE = problem('relative', RELATIVE_PATH);
const AMBIGUOUS = problem('ambiguous', 'it reads differently once percent-decoded, with \\ as a separator, or as a file: URL');
/** The same problems as CEL reports them. */
const IN_CEL = new Map([NUL, ENCODED_NUL, HIDDEN, NOT_UTF8, TOO_ENCODED, BAD_FILE_URL, REMOTE_FILE_URL, RELATIVE, AMBIGUOUS].map((e) => [e, problem(e.data!.reason as string, `the path cannot be checked: ${e.message}`)]));

/** Every reading of `raw` (see above); throws GH_ERR_PATH_DENIED saying why when the path cannot be read safely. */
export const readPath = keepingLastReading(readPathOnce);

function readPathOnce(raw: string): PathReading {
  return plainPath(raw) ?? readPathEveryWay(raw);
}

/**
 * An absolute path that every reading leaves as it is: segments that are not empty, `.` or `..`, and no `\`, `%`
 * or NUL, with nothing Windows would trim (WINDOWS_MAY_DIFFER).
 */
const PLAIN_PATH = /^(?:\/(?!\.\.?(?:\/|$))[^/\\%\0]+)+$/;

/**
 * The reading of a path that needs no resolving (PLAIN_PATH), or undefined for any other. Exported for the test
 * that holds it to `readPathEveryWay`'s answers.
 */
export function plainPath(raw: string): PathReading | undefined {
  if (!PLAIN_PATH.test(raw) || WINDOWS_MAY_DIFFER.test(raw)) return undefined;
  return { forms: Object.freeze([raw]), relative: false };
}

/** Every reading of `raw`, worked out (see above). Exported for the test that compares `plainPath` with it. */
export function readPathEveryWay(raw: string): PathReading {
  if (raw.includes('\0')) throw NUL;
  const relative = raw.length === 0 || (raw[0] !== '/' && raw[0] !== '\\');
  const forms = [normalizePath(raw)];
  addForms(forms, raw, false);
  if (raw.includes('%')) {
    const decoded = percentDecoded(raw);
    if (decoded !== raw) {
      if (decoded.includes('\0')) throw ENCODED_NUL;
      if (count(decoded, isSeparator) > count(raw, isSeparator) || dotDots(decoded) > dotDots(raw)) throw HIDDEN;
      addForms(forms, decoded, true);
    }
  }
  if (raw.length > 5 && (raw[0] === 'f' || raw[0] === 'F') && /^file:/i.test(raw)) add(forms, normalizePath(fileUrlPath(raw)));
  return { forms: Object.freeze(forms), relative };
}

/** The POSIX reading: `/` the only separator, resolved against `/`, no trailing slash. */
export function normalizePath(path: string): string {
  return resolve(path.split('/'), false);
}

/** True when `path` is `dir` or lies below it, in every reading. Throws when readings disagree (see above). */
export function pathUnder(path: string, dir: string): boolean {
  if (!dir.startsWith('/')) return false;
  const base = normalDir(dir);
  return agreed(path, base !== '/', under(base));
}

/** Matches a path against a path glob (see `compilePathGlob`), in every reading. Throws when readings disagree. */
export function pathGlob(path: string, pattern: string): boolean {
  const glob = pathPattern(pattern);
  return agreed(path, glob.anchored, glob.matches);
}

/**
 * `pathUnder` and `pathGlob` with the directory or pattern given once, for a condition that writes it as a literal:
 * it is read at load, and a decision looks up no memo (bounded, so a policy with more than a thousand would miss).
 */
export function pathUnderDir(dir: string): (path: string) => boolean {
  if (!dir.startsWith('/')) return () => false;
  const base = normalizePath(dir);
  const test = under(base);
  return (path) => agreed(path, base !== '/', test);
}

export function pathGlobOf(pattern: string): (path: string) => boolean {
  const { anchored, matches } = pathPattern(pattern);
  return (path) => agreed(path, anchored, matches);
}

/** Whether a path's form is `base` or lies below it. */
const under =
  (base: string) =>
  (form: string): boolean =>
    base === '/' || form === base || (form.startsWith(base) && form.charCodeAt(base.length) === 47); /* / */

const normalDirs = new Map<string, string>();

/** A directory of `pathUnder`, normalised once per text (dirs come from policies; the memo is bounded anyway). */
function normalDir(dir: string): string {
  let normal = normalDirs.get(dir);
  if (normal === undefined) {
    if (normalDirs.size > 1000) normalDirs.clear();
    normalDirs.set(dir, (normal = normalizePath(dir)));
  }
  return normal;
}

function agreed(path: string, anchored: boolean, test: (form: string) => boolean): boolean {
  let reading: PathReading;
  try {
    reading = readPath(path);
  } catch (err) {
    throw IN_CEL.get(err as GatewayError) ?? err;
  }
  const { forms, relative } = reading;
  if (relative && anchored) throw IN_CEL.get(RELATIVE)!;
  const answer = test(forms[0]);
  for (let i = 1; i < forms.length; i++) {
    if (test(forms[i]) !== answer) throw IN_CEL.get(AMBIGUOUS)!;
  }
  return answer;
}

function addForms(forms: string[], text: string, posix: boolean): void {
  if (posix) add(forms, normalizePath(text));
  if (WINDOWS_MAY_DIFFER.test(text)) add(forms, resolve(text.split(SEPARATOR), true));
}

function add(forms: string[], form: string): void {
  if (!forms.includes(form)) forms.push(form);
}

/** The Windows reading differs only with a `\`, or a segment other than `.` and `..` that ends in a dot or a space. */
const WINDOWS_MAY_DIFFER = /\\| (?:\/|$)|[^/.]\.+(?:\/|$)|(?:^|\/)\.{3,}(?:\/|$)/;

function resolve(segments: readonly string[], windows: boolean): string {
  const out: string[] = [];
  for (const raw of segments) {
    const segment = windows ? windowsSegment(raw) : raw;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return `/${out.join('/')}`;
}

/** Windows drops a segment's trailing dots and spaces; one of only dots and spaces is still `.` or `..`. */
function windowsSegment(segment: string): string {
  const last = segment.charCodeAt(segment.length - 1);
  if (last !== 46 /* . */ && last !== 32 /* space */) return segment;
  const trimmed = segment.replace(/[. ]+$/, '');
  if (trimmed !== '') return trimmed;
  return segment.startsWith('..') ? '..' : segment.startsWith('.') ? '.' : '';
}

/** Decodes `%XX` runs as UTF-8 until nothing changes. Throws on encoding that is not UTF-8, or too many layers. */
function percentDecoded(text: string): string {
  let current = text;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    if (!current.includes('%')) return current;
    const next = current.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        throw NOT_UTF8;
      }
    });
    if (next === current) return current;
    current = next;
  }
  throw TOO_ENCODED;
}

function fileUrlPath(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw BAD_FILE_URL;
  }
  if (url.hostname !== '' && url.hostname !== 'localhost') throw REMOTE_FILE_URL;
  const path = percentDecoded(url.pathname);
  if (path.includes('\0')) throw ENCODED_NUL;
  if (count(path, isSeparator) > count(url.pathname, isSeparator)) throw HIDDEN;
  return path;
}

const isSeparator = (c: string): boolean => c === '/' || c === '\\';

function count(text: string, which: (c: string) => boolean): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (which(text[i])) n++;
  return n;
}

/** Segments that are `..`, as either reading takes them (`.. ` and `...` are `..` to Windows). */
function dotDots(text: string): number {
  let n = 0;
  for (const segment of text.split(SEPARATOR)) if (windowsSegment(segment) === '..') n++;
  return n;
}

type SegmentMatcher = ((segment: string) => boolean) | '**';

/**
 * Path globs: within one segment `*` and `?` as glob.ts matches names, and a `**` segment any number of
 * segments, none included (so `/ws/**` matches `/ws` itself). Everything else is literal. `\` in a pattern is a
 * separator, and a pattern starting with neither `/` nor `**` is anchored at `/`. Matching is segment by
 * segment with a single backtrack point, O(path × pattern), never exponential.
 */
export function compilePathGlob(pattern: string): (normalPath: string) => boolean {
  const segments: SegmentMatcher[] = normalizePattern(pattern).split('/').map((s) => (s === '**' ? '**' : compileGlob(s)));
  return (normalPath) => matchSequence(segments, normalPath.split('/'), (m, s) => m !== '**' && m(s), (m) => m === '**');
}

function normalizePattern(pattern: string): string {
  const slashed = pattern.replaceAll('\\', '/');
  const anchored = slashed.startsWith('/') || slashed.startsWith('**') ? slashed : `/${slashed}`;
  const collapsed = anchored.replace(/\/{2,}/g, '/');
  return collapsed.length > 1 && collapsed.endsWith('/') ? collapsed.slice(0, -1) : collapsed;
}

/** Segments within a path, `**` the star: one backtrack point, as glob.ts matches characters. O(n × m) at worst. */
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

const patterns = new Map<string, PathPattern>();

/** A path glob, compiled once per pattern text (patterns come from policies, so the memo stays small; it is bounded anyway). */
export function pathPattern(pattern: string): PathPattern {
  let compiled = patterns.get(pattern);
  if (!compiled) {
    if (patterns.size > 1000) patterns.clear();
    const normal = normalizePattern(pattern);
    compiled = { anchored: normal.startsWith('/') && normal !== '/**', matches: compilePathGlob(pattern) };
    patterns.set(pattern, compiled);
  }
  return compiled;
}
