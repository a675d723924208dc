import type { Upstream } from '../../src/ports.ts';
import type { CatalogEntry, ToolFacts } from '../../src/gateway/catalog.ts';
import type { CallToolResult } from '../../src/protocol/mcp.ts';

/** An upstream that is always ready and answers every tools/call with `answer(arguments)`. */
export function fakeUpstream(name: string, answer: (args: Record<string, unknown>) => CallToolResult, extra: { url?: string } = {}): Upstream {
  return {
    name,
    ...extra,
    state: 'ready',
    serverCapabilities: {},
    start: async () => undefined,
    notify: async () => undefined,
    close: async () => undefined,
    request: async (_method: string, params: Record<string, unknown> | undefined) => answer(params!.arguments as Record<string, unknown>),
  } as unknown as Upstream;
}

/** The catalog entry of tool `tool` on upstream `server`, exposed as `<server>__<tool>`, with an open schema. */
export function fakeEntry(server: string, tool: string, facts: ToolFacts = { annotations: {}, riskTags: [], labels: {} }): CatalogEntry {
  const name = `${server}__${tool}`;
  return {
    name,
    id: name,
    server,
    tool: { name: tool, inputSchema: { type: 'object' } },
    exposed: { name, inputSchema: { type: 'object' } },
    digest: 'sha256:tool',
    facts,
    check: () => undefined,
  } as unknown as CatalogEntry;
}
