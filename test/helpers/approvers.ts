import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { ApprovalRecord } from '../../src/protocol/approval-record.ts';
import type { GatehouseConfig } from '../../src/config/schema.ts';
import { waitFor, type Harness } from './gateway-harness.ts';

/** API keys for the approver tests: an approver, a tool caller without the role, and another tenant's approver. */
export const KEYS = {
  approver: 'approver-key-alice-0123456789',
  caller: 'caller-key-agent-0123456789',
  otherTenant: 'approver-key-zed-tenant-b-0123',
} as const;

export const approverAuth: NonNullable<GatehouseConfig['auth']> = {
  apiKeys: [
    { key: KEYS.approver, principal: 'alice', tenant: 'default', roles: ['approver'] },
    { key: KEYS.caller, principal: 'agent', tenant: 'default', roles: [] },
    { key: KEYS.otherTenant, principal: 'zed', tenant: 'tenant-b', roles: ['approver'] },
  ],
};

/** The server's base URL (the harness gives the /mcp endpoint). */
export const baseOf = (h: Harness): string => h.url.replace(/\/mcp$/, '');

/** An MCP client over HTTP that sends an API key. */
export async function connectWithKey(url: string, key: string | undefined, name = 'approver-test'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

/**
 * Calls `fx__write` with a progress token, so the gateway holds the call while it waits for a human, and
 * resolves to the call's eventual result.
 */
export function heldWrite(client: Client, args: Record<string, unknown> = { key: 'k', value: 'v' }): Promise<{ isError?: boolean; content: unknown }> {
  return client.callTool({ name: 'fx__write', arguments: args }, { onprogress: () => undefined } as never) as never;
}

/** The approval the gateway created for a held call. */
export async function pendingApproval(h: Harness): Promise<ApprovalRecord> {
  await waitFor(async () => (await h.gateway.approvals.list('pending')).length > 0, 'a pending approval');
  const [record] = await h.gateway.approvals.list('pending');
  return record;
}

export const resultText = (result: { content: unknown }): string => (result.content as { text: string }[])[0].text;

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: any;
}

/** One JSON request to the approvals API. */
export async function api(h: Harness, path: string, options: { method?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...(options.key ? { authorization: `Bearer ${options.key}` } : {}), ...options.headers };
  if (options.body !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(`${baseOf(h)}${path}`, {
    method: options.method ?? 'GET',
    headers,
    ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // HTML, or empty
  }
  return { status: response.status, headers: response.headers, body };
}
