import { GatewayError } from '../errors.ts';

/** A value found in a call's arguments, with where it was (`files.1`, `auth.token`). */
export interface ArgumentValue {
  at: string;
  value: unknown;
}

/** Arguments nested deeper than this are refused by the checks that must see every value (fail closed). */
export const MAX_DEPTH = 100;

const INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * The values a dotted path names (`path`, `auth.url`, `items.*.file`). Arrays are crossed element-wise: a
 * segment that is neither `*` nor an index applies to each element, and a path that ends on an array yields
 * each element. `*` takes every key of an object or every element of an array.
 */
export function valuesAt(root: unknown, path: string): ArgumentValue[] {
  const out: ArgumentValue[] = [];
  collect(root, path.split('.'), 0, '', out, 0);
  return out;
}

function collect(value: unknown, segments: string[], i: number, at: string, out: ArgumentValue[], depth: number): void {
  if (depth > MAX_DEPTH) throw tooDeep();
  if (Array.isArray(value)) {
    const segment = segments[i];
    const consumes = i < segments.length && (segment === '*' || INDEX.test(segment));
    if (consumes && segment !== '*') {
      const index = Number(segment);
      if (index < value.length) collect(value[index], segments, i + 1, join(at, segment), out, depth + 1);
      return;
    }
    for (let k = 0; k < value.length; k++) collect(value[k], segments, consumes ? i + 1 : i, join(at, String(k)), out, depth + 1);
    return;
  }
  if (i === segments.length) {
    out.push({ at, value });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const record = value as Record<string, unknown>;
  const segment = segments[i];
  if (segment === '*') {
    for (const key of Object.keys(record)) collect(record[key], segments, i + 1, join(at, key), out, depth + 1);
  } else if (Object.hasOwn(record, segment)) {
    collect(record[segment], segments, i + 1, join(at, segment), out, depth + 1);
  }
}

/**
 * The strings at the named paths, absent and null values skipped. A value there that is not a string cannot be
 * checked as the constraint means, so `refuse` turns it into the error thrown.
 */
export function namedStrings(root: unknown, names: readonly string[], refuse: (found: ArgumentValue) => Error): ArgumentValue[] {
  const out: ArgumentValue[] = [];
  for (const name of names) {
    for (const found of valuesAt(root, name)) {
      if (found.value === undefined || found.value === null) continue;
      if (typeof found.value !== 'string') throw refuse(found);
      out.push(found);
    }
  }
  return out;
}

/**
 * Every value, at any depth, under a key that `wanted` accepts, plus (with `strings`) every string anywhere.
 * Arrays under a wanted key yield their elements; objects under it are searched further as well.
 */
export function valuesWhere(root: unknown, wanted: (key: string) => boolean): ArgumentValue[] {
  const out: ArgumentValue[] = [];
  search(root, '', false, wanted, out, 0);
  return out;
}

/** Every string in the arguments, at any depth. */
export function allStrings(root: unknown): ArgumentValue[] {
  const out: ArgumentValue[] = [];
  search(root, '', true, () => true, out, 0);
  return out;
}

function search(value: unknown, at: string, take: boolean, wanted: (key: string) => boolean, out: ArgumentValue[], depth: number): void {
  if (depth > MAX_DEPTH) throw tooDeep();
  if (typeof value === 'string') {
    if (take) out.push({ at, value });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (let k = 0; k < value.length; k++) search(value[k], join(at, String(k)), take, wanted, out, depth + 1);
    return;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) search(record[key], join(at, key), wanted(key), wanted, out, depth + 1);
}

const join = (at: string, key: string): string => (at ? `${at}.${key}` : key);

function tooDeep(): GatewayError {
  return new GatewayError('GH_ERR_INVALID_ARGUMENTS', `the arguments are nested deeper than ${MAX_DEPTH} levels, too deep to check against the policy`);
}
