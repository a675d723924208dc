import { MODERN_PROTOCOL_VERSION } from './mcp.ts';

/** The `_meta` keys of the 2026-07-28 revision's per-request envelope (and of a result's serverInfo). */
export const ENVELOPE_KEYS = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
} as const;

/** The envelope a 2026-07-28 client puts in the `_meta` of every request it sends. */
export function modernEnvelope(clientInfo: { name: string; version: string }, capabilities: Record<string, unknown>): Record<string, unknown> {
  return { [ENVELOPE_KEYS.protocolVersion]: MODERN_PROTOCOL_VERSION, [ENVELOPE_KEYS.clientInfo]: clientInfo, [ENVELOPE_KEYS.clientCapabilities]: capabilities };
}
