import type { PathConstraint } from '../kernel/constraints.ts';
import { namedStrings, valuesWhere, type ArgumentValue } from './argument-values.ts';
import { pathGlob } from '../kernel/paths.ts';
import { isGatewayError } from '../errors.ts';
import { quoted, refusal } from './refusal.ts';

// Path constraints are checked lexically: Gatehouse sees the string the tool will receive, not the tool's
// filesystem. So:
// - `\` is a separator, `.`, `..` and empty segments are resolved, and `..` never climbs above `/`.
// - A relative path is resolved against `/` (the tool's working directory is unknown): `notes.txt` is checked as
//   `/notes.txt`, so an `allow` of absolute directories refuses relative paths rather than guessing. `~` is
//   not expanded (`~/.ssh/x` is `/~/.ssh/x`: `**/.ssh/**` still refuses it; an absolute `allow` does too).
// - A path is also checked as it reads after percent-decoding (repeated until stable), since some tools decode;
//   if decoding hides `..` or a separator (`%2e%2e`, `%2f`, `%5c`, double-encoded or not), the path is refused.
// - A `file:` URL is also checked as its decoded path; one that names another host is refused.
// - NUL anywhere is refused (C APIs stop reading there).
// - Globs are the kernel's path globs (`*` within a segment, `**` any run of segments, `/ws/**` admits `/ws`),
//   the same CEL's `glob()` uses; a pattern starting with neither `/` nor `**` is anchored at `/`. Where a path
//   still reads differently once decoded or with `\` as a separator, the glob refuses to answer: refused.
// - `allow` matches case-sensitively. `deny` matches case-sensitively and also case-folded, with trailing dots
//   and spaces of each segment stripped and Unicode in NFC, so `/HOME/u/.SSH/id` and `.ssh./id` cannot slip past
//   `**/.ssh/**` on a case-insensitive or Windows filesystem.
// - Symlinks are not resolved: a link inside an allowed tree can point out of it. That is the tool's sandbox to
//   guard; Gatehouse guards what the model asks for.

/** The argument names checked when a path constraint names none: compared case-insensitively, ignoring `_`/`-`. */
export const DEFAULT_PATH_ARGS = ['path', 'paths', 'file', 'files', 'filePath', 'filename', 'dir', 'directory', 'source', 'destination', 'src', 'dst', 'target', 'cwd', 'root'];

const defaultNames = new Set(DEFAULT_PATH_ARGS.map(loose));
const isPathName = (key: string): boolean => defaultNames.has(loose(key));

function loose(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '');
}

const MAX_DECODE_ROUNDS = 8;

/** Throws GH_ERR_PATH_DENIED, naming the argument and the rule, for the first path any constraint refuses. */
export function checkPaths(args: Record<string, unknown>, constraints: readonly PathConstraint[]): void {
  for (const constraint of constraints) {
    for (const found of pathValues(args, constraint)) checkPath(found, constraint);
  }
}

function pathValues(args: Record<string, unknown>, constraint: PathConstraint): ArgumentValue[] {
  if (!constraint.args) return valuesWhere(args, isPathName).filter((v) => typeof v.value === 'string');
  return namedStrings(args, constraint.args, ({ at }) => refusal('GH_ERR_PATH_DENIED', `The argument ${at} must be a path string; rule ${constraint.ruleId} checks it.`, { ruleId: constraint.ruleId, argument: at }));
}

function checkPath({ at, value }: ArgumentValue, constraint: PathConstraint): void {
  const raw = value as string;
  const deny = (why: string) => refusal('GH_ERR_PATH_DENIED', `The path ${quoted(raw)} in argument ${at} is refused by rule ${constraint.ruleId}: ${why}.`, { ruleId: constraint.ruleId, argument: at });
  const forms = pathForms(raw);
  if (typeof forms === 'string') throw deny(forms);
  try {
    for (const form of forms) {
      if (constraint.allow && !constraint.allow.some((p) => pathGlob(form, p))) {
        throw deny(`${quoted(form)} is not under an allowed path (${constraint.allow.join(', ')})`);
      }
      const folded = foldPath(form);
      const hit = constraint.deny?.find((p) => pathGlob(form, p) || pathGlob(folded, foldPath(p)));
      if (hit) throw deny(`${quoted(form)} matches the denied pattern ${hit}`);
    }
  } catch (err) {
    // The glob would not answer: the path reads differently once decoded or with `\` as a separator.
    if (!isGatewayError(err)) throw deny((err as Error).message);
    throw err;
  }
}

/** The absolute paths a path argument may stand for, or why it is refused outright. */
export function pathForms(raw: string): string[] | string {
  if (raw.includes('\0')) return 'it contains a NUL character';
  const forms = [lexicalPath(raw)];
  const decoded = percentDecode(raw);
  if (decoded === undefined) return 'it is percent-encoded too many times over';
  if (decoded !== raw) {
    if (decoded.includes('\0')) return 'it contains an encoded NUL character';
    if (separators(decoded) > separators(raw) || /(?:^|[/\\])\.\.(?:[/\\]|$)/.test(decoded)) return 'its percent-encoding hides a separator or `..`';
    forms.push(lexicalPath(decoded));
  }
  if (/^file:/i.test(raw)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return 'it is not a valid file: URL';
    }
    if (url.hostname !== '' && url.hostname !== 'localhost') return `it is a file: URL on another host (${url.hostname})`;
    const path = percentDecode(url.pathname);
    if (path === undefined || path.includes('\0')) return 'its file: URL path cannot be decoded safely';
    forms.push(lexicalPath(path));
  }
  return forms.length === 1 || (forms.length === 2 && forms[0] === forms[1]) ? [forms[0]] : [...new Set(forms)];
}

/** Resolves `.`, `..` and empty segments against `/`, with `\` as a separator. */
export function lexicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split(/[/\\]/)) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join('/')}`;
}

/** Decodes `%XX` runs (leaving malformed ones as they are) until nothing changes; undefined if it never settles. */
function percentDecode(text: string): string | undefined {
  let current = text;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    if (!current.includes('%')) return current;
    const next = current.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
    if (next === current) return current;
    current = next;
  }
  return undefined;
}

function separators(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text[i] === '/' || text[i] === '\\') n++;
  return n;
}

/** How a case-insensitive, trailing-dot-forgiving filesystem (Windows, default macOS) may read a path. */
function foldPath(path: string): string {
  return path
    .normalize('NFC')
    .toLowerCase()
    .split('/')
    .map((segment) => segment.replace(/[. ]+$/, '') || segment)
    .join('/');
}
