/**
 * JSON Canonicalization Scheme (RFC 8785): object keys sorted by UTF-16 code units, no whitespace, numbers in
 * ECMAScript's shortest round-trip form (which JSON.stringify already produces). Digests of arguments, tool
 * definitions, policy bundles and audit records are all taken over this form, so equal values hash equally.
 */
export function canonicalize(value: unknown): string {
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
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += canonicalize(value[i]);
    }
    return out + ']';
  }
  const maybeJson = value as { toJSON?: () => unknown };
  if (typeof maybeJson.toJSON === 'function') return canonicalize(maybeJson.toJSON());
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  // Plain loops, no closures: this runs for every audit record and every digest on the hot path.
  for (let i = 0; i < keys.length; i++) {
    const item = record[keys[i]];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    out += (first ? '' : ',') + JSON.stringify(keys[i]) + ':' + canonicalize(item);
    first = false;
  }
  return out + '}';
}
