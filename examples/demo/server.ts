/**
 * The demo upstream behind `npm start`: a small notes server with one tool of each kind Gatehouse governs.
 *   read_note   read-only: allowed by the default policy
 *   write_note  marked destructiveHint: needs a human's approval
 *   slow_count  reports progress while it counts: allowed, with the default timeout and output cap
 * Notes live in memory for the life of the process.
 */
import { McpServer, type CallToolResult } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import * as z from 'zod';

const notes = new Map<string, string>([['welcome', 'Hello from the Gatehouse demo. Try write_note to see an approval.']]);
const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });

const server = new McpServer({ name: 'gatehouse-demo-notes', version: '1.0.0' });

server.registerTool(
  'read_note',
  { description: 'Reads a note by name', inputSchema: z.object({ name: z.string() }), annotations: { readOnlyHint: true } },
  ({ name }) => (notes.has(name) ? text(notes.get(name)!) : { ...text(`no note named ${name}; notes: ${[...notes.keys()].join(', ')}`), isError: true }),
);

server.registerTool(
  'write_note',
  {
    description: 'Creates or overwrites a note',
    inputSchema: z.object({ name: z.string(), body: z.string() }),
    annotations: { destructiveHint: true },
  },
  ({ name, body }) => {
    notes.set(name, body);
    return text(`saved note ${name}`);
  },
);

server.registerTool(
  'slow_count',
  {
    description: 'Counts to n, one step per second, reporting progress',
    inputSchema: z.object({ n: z.number().int().min(1).max(30).default(5) }),
  },
  async ({ n }, ctx) => {
    const token = ctx.mcpReq._meta?.progressToken;
    for (let i = 1; i <= n; i++) {
      await new Promise((r) => setTimeout(r, 1_000));
      if (token !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: n, message: `counted ${i}` } });
    }
    return text(`counted to ${n}`);
  },
);

await server.connect(new StdioServerTransport());
