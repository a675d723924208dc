import type { z } from 'zod';
import { GatewayError, type ErrorCode } from '../errors.ts';

/** One mistake in a config or policy file: where it is, and a sentence a person understands. */
export interface Problem {
  file: string;
  /** 1-based; absent when the file could not be read or the key has no place in it. */
  line?: number;
  /** The key path (`upstreams.files.url` as `['upstreams', 'files', 'url']`); empty for the file as a whole. */
  path: (string | number)[];
  message: string;
}

/** `file:line: key.path: message`, the form every problem is printed in. */
export function formatProblem(problem: Problem): string {
  const where = `${problem.file}${problem.line ? `:${problem.line}` : ''}`;
  return problem.path.length > 0 ? `${where}: ${formatPath(problem.path)}: ${problem.message}` : `${where}: ${problem.message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  // A key that is no plain word (a space, an empty name) is quoted, so the path still reads as one.
  const key = (p: PropertyKey, i: number) => (typeof p === 'number' ? `[${p}]` : !/^[A-Za-z0-9_$-]+$/.test(String(p)) ? `[${JSON.stringify(String(p))}]` : i === 0 ? String(p) : `.${String(p)}`);
  return path.map(key).join('');
}

/** Every problem found, in one error: the message lists them one a line, `data.problems` holds them. */
export function invalid(code: ErrorCode, problems: readonly Problem[]): GatewayError {
  return new GatewayError(code, problems.map(formatProblem).join('\n'), { data: { problems: [...problems] } });
}

/** The problems an error from `invalid` carries; anything else is rethrown (it is no mistake in a file). */
export function problemsIn(err: unknown, code: ErrorCode): Problem[] {
  const problems = err instanceof GatewayError && err.code === code ? (err.data?.problems as Problem[] | undefined) : undefined;
  if (!problems) throw err;
  return problems;
}

/**
 * Zod's issues as sentences: passed as the per-parse error map, so the messages a schema sets itself still win.
 * Values are quoted only when they cannot be secrets (numbers, booleans, enum choices).
 */
export const humanMessages = (issue: z.core.$ZodRawIssue): string | undefined => {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? `missing: expected ${kind(issue.expected)}` : `expected ${kind(issue.expected)}, got ${describe(issue.input)}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describe(issue.input, true)}`;
    case 'too_small':
      return bound(issue.origin, 'at least', issue.minimum, issue.inclusive !== false, issue.input);
    case 'too_big':
      return bound(issue.origin, 'at most', issue.maximum, issue.inclusive !== false, issue.input);
    case 'invalid_format':
      return issue.format === 'url' ? 'expected a URL' : `does not have the expected form (${issue.format})`;
    case 'invalid_union':
      return `expected ${[...new Set(issue.errors.map((branch) => expectation(branch[0])))].join(' or ')}, got ${describe(issue.input)}`;
    case 'invalid_key':
      return `${describe(issue.input, true)} is not allowed as a name here`;
    default:
      return undefined;
  }
};

/**
 * The problems of a failed parse, each at its line. An unknown key is reported at its own line, with the key it
 * was probably meant to be when `schema` knows the keys at that place.
 */
export function problemsOf(file: string, lineOf: (path: readonly PropertyKey[]) => number | undefined, issues: readonly z.core.$ZodIssue[], schema?: z.ZodType): Problem[] {
  return issues.flatMap((issue) => {
    const path = issue.path as (string | number)[];
    if (issue.code === 'unrecognized_keys') {
      const known = schema ? keysAt(schema, path) : [];
      return issue.keys.map((key) => ({ file, line: lineOf([...path, key]), path: [...path, key], message: unknownKey(key, known) }));
    }
    return [{ file, line: lineOf(path), path, message: issue.message }];
  });
}

/** `unknown key "comand"; did you mean "command"?` */
export function unknownKey(key: string, known: readonly string[]): string {
  const closest = known
    .map((k) => ({ k, d: distance(key.toLowerCase(), k.toLowerCase()) }))
    .filter(({ k, d }) => d <= Math.max(1, Math.floor(k.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  if (closest) return `unknown key "${key}"; did you mean "${closest.k}"?`;
  return known.length > 0 && known.length <= 16 ? `unknown key "${key}"; the keys here are ${known.join(', ')}` : `unknown key "${key}"`;
}

/** The keys a schema accepts at a path (through optional, default, pipe, union, record and array wrappers). */
function keysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  const into = (inner: unknown, rest = path) => keysAt(inner as z.ZodType, rest);
  switch (def.type) {
    case 'object': {
      const shape = def.shape as Record<string, z.ZodType>;
      if (path.length === 0) return Object.keys(shape);
      const next = shape[String(path[0])];
      return next ? into(next, path.slice(1)) : [];
    }
    case 'record':
      return path.length === 0 ? [] : into(def.valueType, path.slice(1));
    case 'array':
      return path.length === 0 ? [] : into(def.element, path.slice(1));
    case 'union':
      return [...new Set((def.options as z.ZodType[]).flatMap((option) => into(option)))];
    case 'pipe':
      return into(def.in);
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
    case 'catch':
      return into(def.innerType);
    default:
      return [];
  }
}

/** What a union branch wanted, for `expected a string or false`. */
function expectation(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'something else';
  if (issue.code === 'invalid_type') return kind(issue.expected);
  if (issue.code === 'invalid_value') return issue.values.map((v) => JSON.stringify(v)).join(' or ');
  return issue.message;
}

function bound(origin: string, side: string, limit: number | bigint, inclusive: boolean, input: unknown): string {
  const n = Number(limit);
  if (origin === 'string') return n === 1 && side === 'at least' ? 'must not be empty' : `must be ${side} ${inclusive ? n : side === 'at least' ? n + 1 : n - 1} characters long`;
  if (origin === 'array' || origin === 'set') return `needs ${side} ${n} ${n === 1 ? 'entry' : 'entries'}`;
  const op = side === 'at least' ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than';
  return `must be ${op} ${n}, got ${describe(input)}`;
}

function kind(expected: string): string {
  const names: Record<string, string> = {
    string: 'a string',
    number: 'a number',
    int: 'a whole number',
    boolean: 'true or false',
    object: 'a mapping (key: value)',
    array: 'a list',
    record: 'a mapping (key: value)',
    literal: 'a fixed value',
  };
  return names[expected] ?? expected;
}

/** A value as the sentence names it; strings only by their kind unless they are safe to show. */
function describe(value: unknown, showStrings = false): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null (an empty value)';
  if (typeof value === 'string') return showStrings ? JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value) : 'a string';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value === 'number' ? 'the number ' : ''}${value}`;
  if (Array.isArray(value)) return 'a list';
  return 'a mapping';
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}
