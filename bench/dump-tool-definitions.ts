/**
 * Re-dumps the real tool definitions of the poisoning corpus (test/fixtures/tool-definitions/real.json): each MCP
 * server installed as a dev dependency, and our fixture upstream, asked for tools/list over stdio by the SDK's own
 * client. Run after upgrading one of them: `node --import tsx bench/dump-tool-definitions.ts`.
 * Nothing here reaches the network: the servers are started as the tests start them (desktop-commander in a fresh
 * home with telemetry off; server-github with a dummy token, which it only uses on a call; server-postgres with a
 * URL it only connects to on a call).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { ROOT } from '../test/helpers/gateway-harness.ts';
import { desktopCommanderEnv, neutralDefinition } from '../test/helpers/desktop-commander.ts';

const modules = (path: string) => join(ROOT, 'node_modules', path);

interface Source {
  server: string;
  args: string[];
  env?: Record<string, string>;
  /** What to keep of a definition: desktop-commander's as on a plain Linux machine, not this one's. */
  keep?: (tool: Record<string, unknown>) => Record<string, unknown>;
}

const dc = desktopCommanderEnv();
const SOURCES: Source[] = [
  { server: 'everything', args: [modules('@modelcontextprotocol/server-everything/dist/index.js'), 'stdio'] },
  { server: 'filesystem', args: [modules('@modelcontextprotocol/server-filesystem/dist/index.js'), ROOT] },
  { server: 'memory', args: [modules('@modelcontextprotocol/server-memory/dist/index.js')], env: { MEMORY_FILE_PATH: join(dc.home, 'memory.json') } },
  { server: 'github', args: [modules('@modelcontextprotocol/server-github/dist/index.js')], env: { GITHUB_PERSONAL_ACCESS_TOKEN: 'dummy' } },
  { server: 'postgres', args: [modules('@modelcontextprotocol/server-postgres/dist/index.js'), 'postgresql://127.0.0.1:9/none'] },
  { server: 'desktop-commander', args: dc.args, env: dc.env, keep: neutralDefinition },
  { server: 'playwright', args: [modules('@playwright/mcp/cli.js'), '--headless', '--isolated'] },
  { server: 'fixture', args: ['--import', 'tsx', join(ROOT, 'test/fixtures/upstream-server.ts')], env: { FIXTURE_RUG_PULL: '1', FIXTURE_CONSTRAINT_TOOLS: '1' } },
];

async function dump(source: Source): Promise<Record<string, unknown>[]> {
  const client = new Client({ name: 'gatehouse-dump', version: '1' });
  const env = { PATH: process.env.PATH ?? '', ...source.env };
  await client.connect(new StdioClientTransport({ command: process.execPath, args: source.args, env, cwd: ROOT, stderr: 'ignore' }));
  try {
    const tools: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor ? { cursor } : {});
      tools.push(...(page.tools as Record<string, unknown>[]));
      cursor = page.nextCursor;
    } while (cursor);
    return source.keep ? tools.map(source.keep) : tools;
  } finally {
    await client.close();
  }
}

const out: Record<string, Record<string, unknown>[]> = {};
for (const source of SOURCES) {
  out[source.server] = await dump(source);
  process.stderr.write(`${source.server}: ${out[source.server].length} tools\n`);
}
writeFileSync(join(ROOT, 'test/fixtures/tool-definitions/real.json'), `${JSON.stringify(out, null, 1)}\n`);
process.exit(0);
