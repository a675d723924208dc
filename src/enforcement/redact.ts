import type { CallToolResult } from '../protocol/mcp.ts';
import { GatewayError } from '../errors.ts';
import { MAX_DEPTH } from './argument-values.ts';
import { redactEntryProblem, regexParts } from '../kernel/safe-regex.ts';
import { isSecretKey } from './secret-keys.ts';

// Redaction rules (a policy's `redact.args` / `redact.result`):
//   `password`         a bare name: that key at any depth
//   `auth.token`       a dotted path from the top; arrays are crossed element-wise, `*` is any key or element
//   `/sk-[a-z0-9]+/i`  a regular expression, applied to every string value
// A matched value (whatever its type) becomes "[REDACTED]"; a regex replaces only what it matches.
// Arguments also lose the values of secret-looking keys (`isSecretKey`), with or without a rule.

export const REDACTED = '[REDACTED]';

interface Redaction {
  names: ReadonlySet<string>;
  paths: readonly (readonly string[])[];
  /** The state of each path at the top: path index << 8 | segments matched so far (MAX_FIELD_SEGMENTS fits in 8 bits). */
  rootStates: readonly number[];
  patterns: readonly RegExp[];
  secretKeys: boolean;
  marker: string;
}

const NO_STATES: readonly number[] = Object.freeze([]);
const MATCH: readonly number[] = Object.freeze([]);

const cache = new Map<string, Redaction>();
const CACHE_LIMIT = 1024;
const SECRETS_ONLY = compile([], true, REDACTED);

/**
 * What Gatehouse records or shows about a call's arguments (audit, approval preview, DLQ, logs): the rules applied,
 * and every secret-looking key masked (unless `secretKeys` is false: `audit.recordArguments: full`). Returns `args`
 * itself when nothing needed hiding, so the common call allocates nothing. Never applied to what the upstream
 * receives.
 */
export function redactArguments(args: Record<string, unknown>, rules?: readonly string[], marker = REDACTED, secretKeys = true): Record<string, unknown> {
  if (!secretKeys && !rules?.length) return args;
  const r = rules?.length || marker !== REDACTED || !secretKeys ? compile(rules ?? [], secretKeys, marker) : SECRETS_ONLY;
  return walk(args, r, r.rootStates, 0) as Record<string, unknown>;
}

/**
 * A tool result as it may leave Gatehouse. Field rules apply to `structuredContent`, to `_meta`, and inside text
 * (of text parts and embedded resources) that is JSON; patterns apply to every string of the result. Returns
 * `result` itself when nothing matched.
 */
export function redactResult(result: CallToolResult, rules: readonly string[]): CallToolResult {
  const r = compile(rules, false, REDACTED);
  let out = result;
  if (r.names.size > 0 || r.paths.length > 0) {
    const fields: Redaction = { ...r, patterns: [] };
    let content: CallToolResult['content'] | undefined;
    for (let i = 0; i < result.content.length; i++) {
      const part = result.content[i];
      const redacted = redactPart(part, fields);
      if (redacted !== part) {
        content ??= result.content.slice();
        content[i] = redacted;
      }
    }
    const structured = result.structuredContent === undefined ? undefined : walk(result.structuredContent, fields, fields.rootStates, 0);
    // The upstream's `_meta` reaches the client too (beside Gatehouse's own keys).
    const meta = result._meta === undefined ? undefined : walk(result._meta, fields, fields.rootStates, 0);
    if (content || structured !== result.structuredContent || meta !== result._meta) {
      out = { ...result };
      if (content) out.content = content;
      if (structured !== result.structuredContent) out.structuredContent = structured as Record<string, unknown>;
      if (meta !== result._meta) out._meta = meta as Record<string, unknown>;
    }
  }
  if (r.patterns.length > 0) out = walk(out, { ...r, names: new Set(), paths: [], rootStates: NO_STATES }, NO_STATES, 0) as CallToolResult;
  return out;
}

/** Any other value leaving Gatehouse on the result's behalf (an upstream's JSON-RPC error, for instance). */
export function redactValue<T>(value: T, rules: readonly string[]): T {
  const r = compile(rules, false, REDACTED);
  return walk(value, r, r.rootStates, 0) as T;
}

function redactPart(part: Record<string, unknown>, fields: Redaction): Record<string, unknown> {
  if (part.type === 'text' && typeof part.text === 'string') {
    const text = redactJsonText(part.text, fields);
    return text === part.text ? part : { ...part, text };
  }
  const resource = part.resource as Record<string, unknown> | undefined;
  if (part.type === 'resource' && resource && typeof resource.text === 'string') {
    const text = redactJsonText(resource.text, fields);
    return text === resource.text ? part : { ...part, resource: { ...resource, text } };
  }
  return part;
}

/** Text that is JSON gets the field rules inside it; any other text is left to the patterns. */
function redactJsonText(text: string, fields: Redaction): string {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text;
  }
  const redacted = walk(parsed, fields, fields.rootStates, 0);
  return redacted === parsed ? text : JSON.stringify(redacted, null, text.includes('\n') ? 2 : undefined);
}

/** Copy-on-write: returns `value` itself unless something under it was redacted. */
function walk(value: unknown, r: Redaction, states: readonly number[], depth: number): unknown {
  if (typeof value === 'string') return r.patterns.length > 0 ? replacePatterns(value, r) : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return r.marker; // too deep to look through: hidden rather than shown unread
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = states.length > 0 ? advance(states, r, String(i), true) : NO_STATES;
      const item = next === MATCH ? r.marker : walk(value[i], r, next, depth + 1);
      if (item !== value[i]) {
        out ??= value.slice();
        out[i] = item;
      }
    }
    return out ?? value;
  }
  const record = value as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  // for…in, not Object.keys: no array per object on the path every call takes. Values are plain JSON.
  for (const key in record) {
    const current = record[key];
    let item: unknown;
    if (r.names.has(key) || (r.secretKeys && isSecretKey(key))) {
      item = r.marker;
    } else {
      const next = states.length > 0 ? advance(states, r, key, false) : NO_STATES;
      item = next === MATCH ? r.marker : walk(current, r, next, depth + 1);
    }
    if (item !== current) {
      out ??= { ...record };
      out[key] = item;
    }
  }
  return out ?? value;
}

/** Steps each partial path match into `key`; inside an array, a path not naming an index passes through. */
function advance(states: readonly number[], r: Redaction, key: string, inArray: boolean): readonly number[] {
  let next: number[] | undefined;
  for (const state of states) {
    const path = r.paths[state >> 8];
    const segment = path[state & 255];
    if (segment === '*' || segment === key) {
      if ((state & 255) + 1 === path.length) return MATCH;
      (next ??= []).push(state + 1);
    } else if (inArray) {
      (next ??= []).push(state);
    }
  }
  return next ?? NO_STATES;
}

function replacePatterns(text: string, r: Redaction): string {
  let out = text;
  for (const pattern of r.patterns) out = out.replace(pattern, r.marker);
  return out;
}

function compile(rules: readonly string[], secretKeys: boolean, marker: string): Redaction {
  const key = `${secretKeys ? 1 : 0}${marker}\n${rules.join('\n')}`;
  let r = cache.get(key);
  if (r) return r;
  const names = new Set<string>();
  const paths: string[][] = [];
  const patterns: RegExp[] = [];
  for (const rule of rules) {
    const regex = regexParts(rule);
    if (regex) patterns.push(compileRegex(regex.body, regex.flags, rule));
    else if (!rule.includes('.')) names.add(rule);
    else {
      const problem = redactEntryProblem(rule);
      if (problem) throw new GatewayError('GH_ERR_POLICY_INVALID', problem);
      paths.push(rule.split('.'));
    }
  }
  r = { names, paths, rootStates: paths.map((_, i) => i << 8), patterns, secretKeys, marker };
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, r);
  return r;
}

function compileRegex(source: string, flags: string, rule: string): RegExp {
  try {
    return new RegExp(source, `${flags.replace(/[gy]/g, '')}g`);
  } catch (err) {
    throw new GatewayError('GH_ERR_POLICY_INVALID', `the redaction pattern ${rule} is not a valid regular expression: ${(err as Error).message}`);
  }
}
