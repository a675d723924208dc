import { GatewayError } from '../errors.ts';

/** Deeper values are refused: the encoder recurses, and a hostile depth would overflow the stack. */
const MAX_DEPTH = 1000;

/**
 * JSON Canonicalization Scheme (RFC 8785): object keys sorted by UTF-16 code units, no whitespace, numbers in
 * ECMAScript's shortest round-trip form (which JSON.stringify already produces). Digests of arguments, tool
 * definitions, policy bundles and audit records are all taken over this form, so equal values hash equally.
 * Throws GH_ERR_NESTING_TOO_DEEP for a value nested deeper than 1,000 levels (messages from clients are held
 * to far less where they enter: protocol/nesting.ts).
 */
export function canonicalize(value: unknown): string {
  return encode(value, 0);
}

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
  if (depth >= MAX_DEPTH) throw new GatewayError('GH_ERR_NESTING_TOO_DEEP', `JCS cannot encode a value nested deeper than ${MAX_DEPTH} levels`);
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
