import type { JsonRpcId } from './jsonrpc.ts';
import type { OversizedLine } from './line-splitter.ts';

/** What can be told of a JSON-RPC message too large to parse, from its first and last bytes alone. */
export interface OversizedMessage {
  /** A request or notification (it names a method); otherwise, as far as can be told, a response. */
  readonly hasMethod: boolean;
  /** Its id, when the head or the tail shows it as a top-level member. */
  readonly id: JsonRpcId | undefined;
}

const ID_VALUE = String.raw`(-?\d+|"(?:[^"\\]|\\.)*")`;
const JSONRPC = String.raw`"jsonrpc"\s*:\s*"2\.0"`;
/** Top-level members first, as some writers put them: `{"jsonrpc":"2.0","id":1,…`. */
const LEADING_ID = new RegExp(String.raw`^\s*\{\s*(?:${JSONRPC}\s*,\s*)?"id"\s*:\s*${ID_VALUE}\s*[,}]`);
/**
 * Or last, as the MCP SDKs write them: `…,"jsonrpc":"2.0","id":1}`. Only the top-level object's last member is
 * followed by the line's final `}` alone, and an `"id"` inside a string would have its quotes escaped.
 */
const TRAILING_ID = new RegExp(String.raw`[{,]\s*"id"\s*:\s*${ID_VALUE}\s*(?:,\s*${JSONRPC}\s*)?\}\s*$`);
const LEADING_METHOD = new RegExp(String.raw`^\s*\{\s*(?:(?:${JSONRPC}|"id"\s*:\s*${ID_VALUE})\s*,\s*)*"method"\s*:`);
const TRAILING_METHOD = /[{,]\s*"method"\s*:\s*"(?:[^"\\]|\\.)*"\s*(?:,\s*"[a-z]+"\s*:\s*(?:-?\d+|"(?:[^"\\]|\\.)*")\s*)*\}\s*$/;

/** Reads what it cheaply can of a line over the size limit: whether it names a method, and its id. */
export function readOversizedMessage(line: OversizedLine): OversizedMessage {
  const found = LEADING_ID.exec(line.head) ?? TRAILING_ID.exec(line.tail);
  const hasMethod = LEADING_METHOD.test(line.head) || TRAILING_METHOD.test(line.tail);
  return { hasMethod, id: found ? (JSON.parse(found[1]) as JsonRpcId) : undefined };
}
