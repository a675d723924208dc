import type { PathConstraint } from '../protocol/constraints.ts';
import { namedStrings, valuesWhere, type ArgumentValue } from './argument-values.ts';
import { pathPattern, readPath, RELATIVE_PATH, type PathPattern, type PathReading } from '../kernel/paths.ts';
import { quoted, refusal } from './refusal.ts';

// Path constraints are checked lexically, on kernel/paths.ts's readings of each path argument (the same CEL's
// `pathUnder()` and `glob()` use): as written (POSIX), with `\` as a separator and trailing dots and spaces
// dropped (Windows), both again once percent-decoded, and a `file:` URL's path. Every reading must pass:
// - `allow`: each reading lies under one of the globs. A glob is `*` within a segment, `**` any run of segments
//   (`/ws/**` admits `/ws`); one starting with neither `/` nor `**` is anchored at `/`.
// - `deny`: no reading matches one of the globs, case-sensitively or case-folded (Unicode in NFC, trailing dots
//   and spaces dropped), so `/HOME/u/.SSH/id` cannot slip past `**/.ssh/**` on a case-insensitive filesystem.
//   `allow` stays case-sensitive.
// - Refused outright: NUL, encoding that hides a separator or `..` or is not UTF-8, a `file:` URL on another
//   host, and a relative path (`notes.txt`, `~/x`) when a glob is anchored at `/`: the tool's working directory
//   is unknown. Against `**/…` globs only, a relative path is checked as if under `/`.
// - Symlinks are not resolved: a link inside an allowed tree can point out of it. That is the tool's sandbox to
//   guard; Gatehouse guards what the model asks for.

/** The argument names checked when a path constraint names none: compared case-insensitively, ignoring `_`/`-`. */
export const DEFAULT_PATH_ARGS = ['path', 'paths', 'file', 'files', 'filePath', 'filename', 'dir', 'directory', 'source', 'destination', 'src', 'dst', 'target', 'cwd', 'root'];

const defaultNames = new Set(DEFAULT_PATH_ARGS.map(loose));
const isPathName = (key: string): boolean => defaultNames.has(loose(key));

function loose(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '');
}

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
  let reading: PathReading;
  try {
    reading = readPath(raw);
  } catch (err) {
    throw deny((err as Error).message);
  }
  const allow = constraint.allow?.map(pathPattern);
  const denied = constraint.deny;
  if (reading.relative && (allow?.some((p) => p.anchored) || denied?.some((p) => pathPattern(p).anchored))) throw deny(RELATIVE_PATH);
  for (const form of reading.forms) {
    if (allow && !allow.some((p) => p.matches(form))) throw deny(`${quoted(form)} is not under an allowed path (${constraint.allow!.join(', ')})`);
    if (!denied) continue;
    const folded = foldPath(form);
    const hit = denied.find((p) => pathPattern(p).matches(form) || foldedPattern(p).matches(folded));
    if (hit) throw deny(`${quoted(form)} matches the denied pattern ${hit}`);
  }
}

const foldedPatterns = new Map<string, PathPattern>();

/** A deny glob as a case-insensitive filesystem reads it, folded once per pattern (the pattern cache is bounded). */
function foldedPattern(pattern: string): PathPattern {
  let compiled = foldedPatterns.get(pattern);
  if (!compiled) {
    if (foldedPatterns.size > 1000) foldedPatterns.clear();
    compiled = pathPattern(foldPath(pattern));
    foldedPatterns.set(pattern, compiled);
  }
  return compiled;
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
