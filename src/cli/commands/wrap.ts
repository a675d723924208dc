import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfig } from '../../config/load.ts';
import { DEFAULT_UPSTREAM_TIMEOUT_MS } from '../../config/schema.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../log.ts';
import { createEmbeddedGateway } from '../../runtime/embedded.ts';
import { serveStdio } from '../../gateway/stdio-front.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { defaultWrapDataDir } from '../state.ts';
import { localCaller } from './local-caller.ts';
import { upstreamNameFor } from '../upstream-name.ts';
import { selfCommand } from '../self-command.ts';
import { takeSettings, wrapPacks, wrapPacksOnceRunning } from './wrap-packs.ts';

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

export const BUNDLED_DEFAULT_POLICY = fileURLToPath(new URL('../../../policies/default.yaml', import.meta.url));

export async function runWrap(argv: string[]): Promise<number> {
  const { options, command: [command, ...commandArgs] } = splitWrapArgs(argv);
  const settings = takeSettings(options);
  const args = parseArgs(settings.argv, { values: WRAP_VALUES, booleans: ['no-pack'] });
  if (!command) throw usage('missing the server command, for example: gatehouse wrap npx -y @modelcontextprotocol/server-filesystem /tmp');
  const name = flag(args, 'name') ?? upstreamNameFor(command, commandArgs);
  if (!/^[A-Za-z0-9-]{1,24}$/.test(name)) throw usage(`--name must be 1-24 letters, digits or dashes, got ${JSON.stringify(name)}`);
  const level = flag(args, 'log-level') ?? 'warn';
  if (!LOG_LEVELS.includes(level as LogLevel)) throw usage(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const log = createLogger(level as LogLevel);
  // The name prefixes every tool the client sees: say it even at the default level (warn), unless told to be quiet.
  if (level !== 'error' && level !== 'silent') {
    createLogger('info').info(`serving ${command} as upstream "${name}": its tools are ${name}__<tool>${flag(args, 'name') ? '' : ' (--name sets another)'}`, { upstream: name });
  }
  const dataDir = resolve(flag(args, 'data-dir') ?? defaultWrapDataDir());
  const say = (message: string) => level !== 'error' && level !== 'silent' && createLogger('info').info(message, { upstream: name });
  const packOptions = { command, args: commandArgs, upstream: name, dataDir, pack: flag(args, 'pack'), settings: settings.settings, none: args.flags['no-pack'] === true, say };
  const { installs: packs, lookOnceRunning } = wrapPacks(packOptions);
  const config = defaultConfig({
    listen: { http: false, stdio: true, allowedHosts: [], allowedOrigins: [] },
    dataDir,
    policies: [resolve(flag(args, 'policy') ?? BUNDLED_DEFAULT_POLICY)],
    packs,
    upstreams: { [name]: { command, args: commandArgs, env: {}, cwd: process.cwd(), timeout: DEFAULT_UPSTREAM_TIMEOUT_MS } },
  });
  const gateway = createEmbeddedGateway(config, log, { approveCommand: (id) => `${selfCommand()} approvals approve ${id} --data-dir ${config.dataDir}` });
  // stdin buffers what the client sends meanwhile: its first tools/list sees the upstream's tools.
  await gateway.start();
  // No pack fitted the command: the server's serverInfo name or its tools may name one (before the client is served).
  const running = lookOnceRunning ? gateway.initialisedServer(name) : undefined;
  const late = running ? wrapPacksOnceRunning(packOptions, running) : [];
  if (late.length > 0) gateway.addPacks(late, 'wrap');
  process.on('SIGHUP', () => gateway.reloadPolicy('operator'));
  const served = serveStdio(gateway.stdioServices(), { input: process.stdin, output: process.stdout, caller: localCaller(), maxMessageBytes: config.limits.maxMessageBytes }, log);
  const stop = async () => {
    await gateway.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await served.closed;
  await gateway.stop();
  return 0;
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
