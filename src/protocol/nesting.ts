import { rpcError, RpcErrorCode, type JsonRpcId, type JsonRpcResponse } from './jsonrpc.ts';

/**
 * How deep a message from a client may nest objects and arrays, the message itself being level 1 (so a
 * `tools/call`'s arguments are level 3). JSON.parse reads any depth; what Gatehouse then does with a value
 * (digesting it, serialising it for the upstream, redacting it) walks it, so a depth is refused where a message
 * enters, with a JSON-RPC invalid-params error.
 */
export const MAX_NESTING_DEPTH = 64;

/** Whether `value` nests objects and arrays deeper than `limit` levels. Iterative: no depth can overflow the stack. */
export function nestedDeeperThan(value: unknown, limit: number = MAX_NESTING_DEPTH): boolean {
  if (value === null || typeof value !== 'object') return false;
  const values: object[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const current = values.pop()!;
    const depth = depths.pop()!;
    if (depth > limit) return true;
    if (Array.isArray(current)) {
      for (const item of current) {
        if (item !== null && typeof item === 'object') {
          values.push(item);
          depths.push(depth + 1);
        }
      }
    } else {
      for (const key in current) {
        const item = (current as Record<string, unknown>)[key];
        if (item !== null && typeof item === 'object') {
          values.push(item);
          depths.push(depth + 1);
        }
      }
    }
  }
  return false;
}

/** The answer to a request nested too deep (JSON-RPC invalid params, `data.code` GH_ERR_NESTING_TOO_DEEP). */
export function tooDeep(id: JsonRpcId | null): JsonRpcResponse {
  return rpcError(id, RpcErrorCode.INVALID_PARAMS, `Invalid params: the message nests objects and arrays deeper than ${MAX_NESTING_DEPTH} levels`, { code: 'GH_ERR_NESTING_TOO_DEEP' });
}
