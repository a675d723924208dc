/**
 * The official SDK clients over stdio, for the stdio hop as an MCP host really sees it: `@modelcontextprotocol/sdk`
 * 1.x and the v2 client (`@modelcontextprotocol/client`), each spawning its server through its own
 * StdioClientTransport, as a host does. Same `echo(tool)` shape as the raw client (bench/stdio-client.ts).
 */
import type { Readable } from 'node:stream';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Client as ClientV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';

export type SdkLine = 'sdk1' | 'sdk2';

export interface SdkStdioClient {
  pid: number;
  echo(tool: string): Promise<void>;
  listTools(): Promise<string[]>;
  close(): Promise<void>;
}

/** Spawns `command args` through the SDK line's own stdio transport and connects (2025-11-25, as hosts speak today). */
export async function connectSdkStdio(line: SdkLine, command: string, args: string[], cwd: string): Promise<SdkStdioClient> {
  // stderr piped and drained: inherited, the servers' logs would land in the bench's output.
  const params = { command, args, cwd, env: process.env as Record<string, string>, stderr: 'pipe' as const };
  const transport = line === 'sdk1' ? new StdioV1(params) : new StdioV2(params);
  const client = line === 'sdk1' ? new ClientV1({ name: 'gatehouse-bench', version: '1.0.0' }) : new ClientV2({ name: 'gatehouse-bench', version: '1.0.0' });
  (transport.stderr as Readable | null)?.resume();
  await (client as ClientV1).connect(transport as StdioV1);
  const pid = transport.pid;
  if (pid === null) throw new Error(`${line}: the transport started no process`);
  return {
    pid,
    echo: async (tool) => {
      const result = await client.callTool({ name: tool, arguments: { text: 'hi' } });
      if (result.isError) throw new Error(`${tool} failed: ${JSON.stringify(result).slice(0, 300)}`);
    },
    listTools: async () => (await client.listTools()).tools.map((t) => t.name),
    close: () => client.close(),
  };
}
