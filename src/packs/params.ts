import type { Problem } from '../config/problems.ts';
import type { LoadedYaml } from '../config/yaml-file.ts';
import type { ParamSpec } from './pack-schema.ts';

export type ParamValue = string | number | boolean | string[];

const PLACEHOLDER = /\$\{param:([A-Za-z0-9_]+)\}/g;
const WHOLE = /^\$\{param:([A-Za-z0-9_]+)\}$/;

/**
 * The install's parameters checked against the pack's specs, defaults filled in: every unknown name, value of the
 * wrong type and missing required one is a problem at the spec's line in pack.yaml (the install's own values have no
 * line once the config is parsed), naming the install.
 */
export function resolveParams(manifest: LoadedYaml, specs: Record<string, ParamSpec>, given: Record<string, unknown>, install: string): { values: Record<string, ParamValue>; problems: Problem[] } {
  const problems: Problem[] = [];
  const at = (name: string, message: string): Problem => ({ file: manifest.file, line: manifest.lineOf(['params', name]), path: ['params', name], message: `${install}: ${message}` });
  for (const name of Object.keys(given)) {
    if (!(name in specs)) {
      const known = Object.keys(specs);
      problems.push({ file: manifest.file, line: manifest.lineOf(['params']), path: ['params'], message: `${install}: unknown parameter "${name}"; ${known.length > 0 ? `this pack takes ${known.join(', ')}` : 'this pack takes none'}` });
    }
  }
  const values: Record<string, ParamValue> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const value = given[name] ?? spec.default;
    if (value === undefined) {
      if (spec.required) problems.push(at(name, `the parameter "${name}" is required${spec.description ? ` (${spec.description})` : ''}: set it with --set ${name}=VALUE or params.${name}`));
      continue;
    }
    const problem = paramProblem(spec, value);
    if (problem) problems.push(at(name, `the parameter "${name}" ${given[name] === undefined ? 'default ' : ''}${problem}`));
    else values[name] = value as ParamValue;
  }
  return { values, problems };
}

/** Why a value does not fit its spec, or undefined. */
export function paramProblem(spec: ParamSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string') return `must be a string, got ${describe(value)}`;
      return spec.oneOf && !spec.oneOf.includes(value) ? `must be one of ${spec.oneOf.join(', ')}` : undefined;
    case 'path':
      if (typeof value !== 'string') return `must be a path, got ${describe(value)}`;
      if (!value.startsWith('/')) return 'must be an absolute path (starting with /): what a relative one names depends on the server';
      return value.split('/').some((s) => s === '..' || s === '.') || value.includes('\0') ? 'must be a plain absolute path, without . or .. segments' : undefined;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return `must be a whole number, got ${describe(value)}`;
      if (spec.min !== undefined && value < spec.min) return `must be at least ${spec.min}, got ${value}`;
      return spec.max !== undefined && value > spec.max ? `must be at most ${spec.max}, got ${value}` : undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be true or false, got ${describe(value)}`;
    case 'list':
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) return `must be a list of strings, got ${describe(value)}`;
      return spec.oneOf && value.some((v) => !spec.oneOf!.includes(v)) ? `entries must be among ${spec.oneOf.join(', ')}` : undefined;
  }
}

/** A `--set key=value` as the spec's type reads it: numbers and booleans parsed, a list split at commas. */
export function parseSetting(spec: ParamSpec | undefined, text: string): unknown {
  if (spec?.type === 'integer' && /^-?\d+$/.test(text)) return Number(text);
  if (spec?.type === 'boolean' && (text === 'true' || text === 'false')) return text === 'true';
  if (spec?.type === 'list') return text === '' ? [] : text.split(',').map((s) => s.trim());
  return text;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return 'a string';
  return `${typeof value === 'number' ? 'the number ' : ''}${String(value)}`;
}

/**
 * Fills `${param:NAME}` placeholders in a pack policy's parsed YAML. A string that is only a placeholder takes the
 * value as it is (a list stays a list); inside a CEL condition (`when`) a value is written as a CEL literal, so a
 * value can never change the condition's meaning; elsewhere it is written into the text. A placeholder naming no
 * parameter is a problem at its line.
 */
export function substituteParams(loaded: LoadedYaml, values: Record<string, ParamValue>): { value: unknown; problems: Problem[] } {
  const problems: Problem[] = [];
  const walk = (node: unknown, path: (string | number)[]): unknown => {
    if (Array.isArray(node)) return node.flatMap((item, i) => {
      const out = walk(item, [...path, i]);
      // A list parameter as a list entry spreads into the list.
      return typeof item === 'string' && WHOLE.test(item) && Array.isArray(out) ? out : [out];
    });
    if (node !== null && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, [...path, k])]));
    if (typeof node !== 'string' || !node.includes('${param:')) return node;
    const missing = (name: string) => problems.push({ file: loaded.file, line: loaded.lineOf(path), path, message: `\${param:${name}} names no parameter of this pack (declare it under params: in pack.yaml)` });
    const inCondition = path[path.length - 1] === 'when';
    const whole = WHOLE.exec(node);
    if (whole && !inCondition) {
      if (!(whole[1] in values)) missing(whole[1]);
      return values[whole[1]];
    }
    return node.replace(PLACEHOLDER, (_, name: string) => {
      if (!(name in values)) {
        missing(name);
        return '';
      }
      const value = values[name];
      if (inCondition) return JSON.stringify(value);
      if (Array.isArray(value)) {
        problems.push({ file: loaded.file, line: loaded.lineOf(path), path, message: `\${param:${name}} is a list: use it as a whole value, not inside text` });
        return '';
      }
      return String(value);
    });
  };
  return { value: walk(loaded.value, []), problems };
}
