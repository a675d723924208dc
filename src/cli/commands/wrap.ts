import { LOG_LEVELS, type LogLevel } from '../../log.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { upstreamNameFor } from '../upstream-name.ts';
import { takeSettings } from './pack/settings.ts';
import { launchStdioServer } from '../../runtime/stdio-launch.ts';

export const WRAP_HELP = `Usage: gatehouse wrap [--policy FILE] [--pack NAME [--set KEY=VALUE]... | --no-pack] [--data-dir DIR] [--name NAME] [--] CMD [ARGS...]

Serves MCP on stdio and governs one stdio MCP server, started as CMD ARGS. This is the drop-in line for an
MCP client's server entry (Claude Desktop's mcpServers, for instance). Logs go to stderr, never stdout.
The first word that is not one of the options below starts the server command (\`--\` before it is optional):
everything from there on, options included, belongs to the server.

Options:
  --policy FILE     policy file (default: the bundled policies/default.yaml)
  --data-dir DIR    approvals and audit (default: $GATEHOUSE_DATA_DIR or ~/.gatehouse)
  --name NAME       the upstream's name, the prefix of its tools (default: derived from CMD: an npx package's
                    name, a script's file or project folder name; printed at start)
  --log-level LVL   trace, debug, info, warn, error or silent (default: warn)
  --pack NAME       apply a pack (a bundled one's name, or a pack folder) to the server; parameters the server's
                    command states (the filesystem server's folder) are read from it, --set gives the others.
                    Without --pack, the one bundled pack whose match fits CMD is applied (said on stderr);
                    when none fits CMD, the one whose match fits the server's serverInfo name or tools
  --set KEY=VALUE   a parameter of the pack (repeatable)
  --no-pack         apply no pack, even one that fits`;

const WRAP_VALUES = ['policy', 'data-dir', 'name', 'log-level', 'pack', 'set'];

export async function runWrap(argv: string[]): Promise<number> {
  const { options, command: [command, ...commandArgs] } = splitWrapArgs(argv);
  const settings = takeSettings(options);
  const args = parseArgs(settings.argv, { values: WRAP_VALUES, booleans: ['no-pack'] });
  if (!command) throw usage('missing the server command, for example: gatehouse wrap npx -y @modelcontextprotocol/server-filesystem /tmp');
  const name = flag(args, 'name') ?? upstreamNameFor(command, commandArgs);
  if (!/^[A-Za-z0-9-]{1,24}$/.test(name)) throw usage(`--name must be 1-24 letters, digits or dashes, got ${JSON.stringify(name)}`);
  const level = flag(args, 'log-level') ?? 'warn';
  if (!LOG_LEVELS.includes(level as LogLevel)) throw usage(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  // The server starts now, while the rest of Gatehouse loads (wrap-serve.ts and all it needs): the two start-ups
  // overlap, and the client's first tools/list is answered that much sooner. The upstream adopts the process.
  const launched = launchStdioServer({ command, args: commandArgs, env: {}, cwd: process.cwd() });
  try {
    const { serveWrap } = await import('./wrap-serve.ts');
    return await serveWrap({ command, commandArgs, name, level: level as LogLevel, args, settings: settings.settings, launched });
  } finally {
    if (launched.child.exitCode === null) launched.child.kill();
  }
}

/**
 * Wrap's own options, and the server command: from the first word that is no option of wrap's (a value option
 * takes its value along), or from after `--`. The MCP Inspector drops the first `--` it sees, so neither may be
 * required.
 */
export function splitWrapArgs(argv: readonly string[]): { options: string[]; command: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return { options: argv.slice(0, i), command: argv.slice(i + 1) };
    if (!arg.startsWith('-') || arg === '-') return { options: argv.slice(0, i), command: argv.slice(i) };
    if (!arg.includes('=') && WRAP_VALUES.includes(arg.replace(/^--?/, ''))) i++;
  }
  return { options: [...argv], command: [] };
}
