import type { JsonRpcMessage } from '../../src/protocol/jsonrpc.ts';
import { ENVELOPE_KEYS } from '../../src/protocol/modern-envelope.ts';

/** The request field each method names in `Mcp-Name` (the tasks extension's methods: the task, SEP-2663). */
const NAME_FIELD: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri', 'tasks/get': 'taskId', 'tasks/update': 'taskId', 'tasks/cancel': 'taskId' };

/**
 * The headers a 2026-07-28 request carries over HTTP, from its body: the revision its envelope claims,
 * `Mcp-Method`, and for a call, prompt, read or task method `Mcp-Name`. None (undefined, no object made) for a message
 * without the envelope (2025) or a response; a notification gets the revision only.
 */
export function modernHeaders(message: JsonRpcMessage): Record<string, string> | undefined {
  if (!('method' in message)) return undefined;
  const params = message.params as Record<string, unknown> | undefined;
  const version = (params?._meta as Record<string, unknown> | undefined)?.[ENVELOPE_KEYS.protocolVersion];
  if (typeof version !== 'string') return undefined;
  if (!('id' in message)) return { 'mcp-protocol-version': version };
  const headers: Record<string, string> = { 'mcp-protocol-version': version, 'mcp-method': message.method };
  const field = NAME_FIELD[message.method];
  const name = field ? params?.[field] : undefined;
  if (typeof name === 'string') headers['mcp-name'] = headerValue(name);
  return headers;
}

/** Printable ASCII without edge whitespace goes as is; anything else as `=?base64?…?=` (UTF-8), as the revision says. */
function headerValue(value: string): string {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value) ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}
