import { GatewayError } from '../errors.ts';

/** Deeper values are refused: the encoder recurses, and a hostile depth would overflow the stack. */
const MAX_DEPTH = 1000;

/**
 * JSON Canonicalization Scheme (RFC 8785): object keys sorted by UTF-16 code units, no whitespace, numbers in
 * ECMAScript's shortest round-trip form (which JSON.stringify already produces). Digests of arguments, tool
 * definitions, policy bundles and audit records are all taken over this form, so equal values hash equally.
 * Throws GH_ERR_NESTING_TOO_DEEP for a value nested deeper than 1,000 levels (messages from clients are held
 * to far less where they enter: protocol/nesting.ts).
 *
 * Every object's keys are first put in sorted order (a copy where they are not), and the result written by one
 * JSON.stringify: a policy bundle's 1.4 MB then comes out as one flat string, not a rope of a million pieces
 * (which hashing must flatten), in about half the time. An object key that JavaScript would order before the
 * others (an array index such as "2", or "__proto__", which would set the copy's prototype) cannot keep its sorted
 * place in a copy, so such a value is written by the key-by-key walk instead.
 */
export function canonicalize(value: unknown): string {
  let copy: unknown;
  try {
    copy = sortedCopy(value, 0);
  } catch (err) {
    if (err === UNORDERABLE) return encode(value, 0);
    throw err;
  }
  return JSON.stringify(copy) ?? 'null';
}

/** Thrown by `sortedCopy` for a key that a plain object cannot hold in sorted order. */
const UNORDERABLE = Symbol('unorderable key');
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * The value with every object's keys in sorted order: the value itself where it already is (the common case for
 * records built in sorted order, and for arrays and scalars), a copy only from the first object that is not, so a
 * canonical value costs a walk and no allocation.
 */
function sortedCopy(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return scalar(value);
  if (depth >= MAX_DEPTH) throw tooDeep();
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const sorted = sortedCopy(item, depth + 1);
      if (out === undefined && sorted !== item) out = value.slice(0, i);
      if (out !== undefined) out.push(sorted);
    }
    return out ?? value;
  }
  const maybeJson = value as { toJSON?: () => unknown };
  if (typeof maybeJson.toJSON === 'function') return sortedCopy(maybeJson.toJSON(), depth);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  let inOrder = true;
  for (let i = 1; i < keys.length && inOrder; i++) inOrder = keys[i - 1] < keys[i];
  if (!inOrder) keys.sort();
  let out: Record<string, unknown> | undefined = inOrder ? undefined : {};
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const first = key.charCodeAt(0);
    if ((first >= 48 && first <= 57 && ARRAY_INDEX.test(key) && Number(key) < 4294967295) || key === '__proto__') throw UNORDERABLE;
    const item = record[key];
    const sorted = sortedCopy(item, depth + 1);
    if (out === undefined && sorted !== item) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j]] = record[keys[j]];
    }
    if (out !== undefined) out[key] = sorted;
  }
  return out ?? value;
}

/** A value JSON.stringify writes as JCS does; throws for the numbers JSON cannot carry. */
function scalar(value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('JCS cannot encode a non-finite number');
  if (typeof value === 'bigint') throw new TypeError('JCS cannot encode a bigint');
  return value;
}

const tooDeep = () => new GatewayError('GH_ERR_NESTING_TOO_DEEP', `JCS cannot encode a value nested deeper than ${MAX_DEPTH} levels`);

/** The key-by-key walk, for values whose keys a sorted copy cannot hold in order. */
function encode(value: unknown, depth: number): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('JCS cannot encode a non-finite number');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('JCS cannot encode a bigint');
    case 'object':
      break;
    default:
      return 'null'; // undefined, functions and symbols, as JSON.stringify writes them in arrays
  }
  if (depth >= MAX_DEPTH) throw tooDeep();
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += encode(value[i], depth + 1);
    }
    return out + ']';
  }
  const maybeJson = value as { toJSON?: () => unknown };
  if (typeof maybeJson.toJSON === 'function') return encode(maybeJson.toJSON(), depth);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  // Plain loops, no closures: this runs for every audit record and every digest on the hot path.
  for (let i = 0; i < keys.length; i++) {
    const item = record[keys[i]];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    out += (first ? '' : ',') + JSON.stringify(keys[i]) + ':' + encode(item, depth + 1);
    first = false;
  }
  return out + '}';
}
