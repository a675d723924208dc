import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfig } from '../../config/load.ts';
import { DEFAULT_UPSTREAM_TIMEOUT_MS } from '../../config/schema.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../log.ts';
import { createEmbeddedGateway } from '../../runtime/embedded.ts';
import { serveStdio } from '../../gateway/stdio-front.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { defaultWrapDataDir } from '../state.ts';
import { localCaller } from './local-caller.ts';

export const WRAP_HELP = `Usage: gatehouse wrap [--policy FILE] [--data-dir DIR] [--name NAME] -- CMD [ARGS...]

Serves MCP on stdio and governs one stdio MCP server, started as CMD ARGS. This is the drop-in line for an
MCP client's server entry (Claude Desktop's mcpServers, for instance). Logs go to stderr, never stdout.

Options:
  --policy FILE     policy file (default: the bundled policies/default.yaml)
  --data-dir DIR    approvals and audit (default: $GATEHOUSE_DATA_DIR or ~/.gatehouse)
  --name NAME       the upstream's name, the prefix of its tools (default: derived from CMD)
  --log-level LVL   trace, debug, info, warn, error or silent (default: warn)`;

export const BUNDLED_DEFAULT_POLICY = fileURLToPath(new URL('../../../policies/default.yaml', import.meta.url));

export async function runWrap(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: ['policy', 'data-dir', 'name', 'log-level'] });
  if (args.positionals.length > 0) throw usage(`unexpected ${args.positionals[0]}: put the server command after --`);
  const [command, ...commandArgs] = args.rest;
  if (!command) throw usage('missing the server command after --');
  const name = flag(args, 'name') ?? upstreamNameFor(command, commandArgs);
  if (!/^[A-Za-z0-9-]{1,24}$/.test(name)) throw usage(`--name must be 1-24 letters, digits or dashes, got ${JSON.stringify(name)}`);
  const level = flag(args, 'log-level') ?? 'warn';
  if (!LOG_LEVELS.includes(level as LogLevel)) throw usage(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const log = createLogger(level as LogLevel);
  const config = defaultConfig({
    listen: { http: false, stdio: true, allowedHosts: [], allowedOrigins: [] },
    dataDir: resolve(flag(args, 'data-dir') ?? defaultWrapDataDir()),
    policies: [resolve(flag(args, 'policy') ?? BUNDLED_DEFAULT_POLICY)],
    upstreams: { [name]: { command, args: commandArgs, env: {}, cwd: process.cwd(), timeout: DEFAULT_UPSTREAM_TIMEOUT_MS } },
  });
  const gateway = createEmbeddedGateway(config, log);
  // stdin buffers what the client sends meanwhile: its first tools/list sees the upstream's tools.
  await gateway.start();
  process.on('SIGHUP', () => gateway.reloadPolicy('operator'));
  const served = serveStdio(gateway, { input: process.stdin, output: process.stdout, caller: localCaller(), maxMessageBytes: config.limits.maxMessageBytes }, log);
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

/** `npx -y @scope/server-files /tmp` → `server-files`: the package or script name, as a valid upstream name. */
export function upstreamNameFor(command: string, args: string[]): string {
  const launchers = new Set(['npx', 'node', 'uvx', 'uv', 'python', 'python3', 'bunx', 'deno', 'pnpm', 'yarn', 'docker']);
  const base = basename(command);
  const subject = launchers.has(base) ? args.find((a) => !a.startsWith('-') && a !== 'run') ?? base : base;
  const clean = basename(subject.replace(/@[^/]*$/, '').replace(/^@/, ''))
    .replace(/\.(m?[jt]s|py)$/, '')
    .replace(/[^A-Za-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24);
  return clean || 'upstream';
}
