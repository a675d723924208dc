import { describe, expect, it } from 'vitest';
import { upstreamNameFor } from '../../src/cli/upstream-name.ts';
import { splitWrapArgs } from '../../src/cli/commands/wrap.ts';

const UPSTREAM_NAME = /^[A-Za-z0-9-]{1,24}$/;

describe('the upstream name wrap derives from the server command', () => {
  // [command line, working directory, name]
  const table: [string, string, string][] = [
    ['npx -y @modelcontextprotocol/server-filesystem /Users/me/work', '/home/me', 'filesystem'],
    ['npx -y @modelcontextprotocol/server-everything@2026.8.31', '/home/me', 'everything'],
    ['npx --yes --registry https://r.example.com some-tool', '/home/me', 'some-tool'],
    ['npm exec -y -- @acme/github-mcp-server', '/home/me', 'github'],
    ['pnpm dlx mcp-server-fetch', '/home/me', 'fetch'],
    ['bunx weather-mcp', '/home/me', 'weather'],
    ['uvx mcp-server-time --local-timezone UTC', '/home/me', 'time'],
    ['uvx --from git+https://example.com/x.git mcp-server-git', '/home/me', 'git'],
    ['node --import tsx examples/demo/server.ts', '/work/gatehouse', 'demo'],
    ['node dist/index.js', '/home/me/notes-keeper', 'notes-keeper'],
    ['node /opt/weather-mcp/build/index.js --verbose', '/', 'weather'],
    ['node --max-old-space-size=4096 -r dotenv/config ./cli.js', '/srv/ledger', 'ledger'],
    ['node ./tools/invoice.mjs', '/srv', 'invoice'],
    ['node -e "require(\'x\').serve()"', '/home/me', 'node'],
    ['tsx src/server.ts', '/code/notes', 'notes'],
    ['python3 -m mcp_server_time', '/home/me', 'time'],
    ['python -u /srv/tools/notes/main.py', '/', 'notes'],
    ['uv run --with mcp --directory /srv/weather server.py', '/srv/weather', 'weather'],
    ['deno run -A --allow-read=/tmp jsr:@acme/files-server', '/home/me', 'files'],
    ['docker run -i --rm -e GITHUB_TOKEN -v /a:/b ghcr.io/github/github-mcp-server:latest', '/home/me', 'github'],
    ['/usr/local/bin/mcp-server-git --repository .', '/home/me', 'git'],
    ['./my-notes', '/home/me', 'my-notes'],
    ['node ./server.js', '/', 'server'],
    ['npx -y @acme/an-extraordinarily-long-package-name-for-a-server', '/home/me', 'an-extraordinarily-long'],
    ['python3 -c "import x"', '/home/me', 'python3'],
  ];

  it.each(table)('%s (in %s) → %s', (line, cwd, name) => {
    const [command, ...args] = words(line);
    const derived = upstreamNameFor(command, args, cwd);
    expect(derived).toBe(name);
    expect(derived).toMatch(UPSTREAM_NAME);
  });
});

describe("wrap's own options, then the server command", () => {
  const table: [string, { options: string[]; command: string[] }][] = [
    ['--name fx -- node server.js', { options: ['--name', 'fx'], command: ['node', 'server.js'] }],
    // The MCP Inspector strips the first `--` it sees: the first word that is no option of wrap's starts the command.
    ['--name fx node server.js --name inner', { options: ['--name', 'fx'], command: ['node', 'server.js', '--name', 'inner'] }],
    ['npx -y @modelcontextprotocol/server-filesystem /tmp', { options: [], command: ['npx', '-y', '@modelcontextprotocol/server-filesystem', '/tmp'] }],
    ['--policy p.yaml --log-level=debug npx -y pkg -- --help', { options: ['--policy', 'p.yaml', '--log-level=debug'], command: ['npx', '-y', 'pkg', '--', '--help'] }],
    ['--data-dir /d -- -weird-command', { options: ['--data-dir', '/d'], command: ['-weird-command'] }],
  ];

  it.each(table)('%s', (line, expected) => {
    expect(splitWrapArgs(words(line))).toEqual(expected);
  });
});

/** Splits a command line on spaces, keeping double-quoted words whole (enough for the table). */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}
