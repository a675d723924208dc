import { resolve } from 'node:path';
import { defaultConfig } from '../../config/load.ts';
import { DEFAULT_UPSTREAM_TIMEOUT_MS, type GatehouseConfig } from '../../config/schema.ts';
import { createLogger, type LogLevel } from '../../log.ts';
import { createEmbeddedGateway } from '../../runtime/embedded.ts';
import type { LaunchedServer } from '../../runtime/stdio-launch.ts';
import { serveStdio } from '../../gateway/stdio-front.ts';
import { flag, type ParsedArgs } from '../args.ts';
import { defaultWrapDataDir } from '../state.ts';
import { localCaller } from './local-caller.ts';
import { selfCommand } from '../self-command.ts';
import { wrapPacks, wrapPacksOnceRunning } from './wrap-packs.ts';
import { packageFile } from '../../protocol/package-files.ts';

export const BUNDLED_DEFAULT_POLICY = packageFile('policies/default.yaml');

/** What `gatehouse wrap` parsed, with the server it already started. */
export interface WrapRequest {
  command: string;
  commandArgs: string[];
  name: string;
  level: LogLevel;
  args: ParsedArgs;
  settings: [string, string][];
  launched: LaunchedServer;
}

/** The rest of `gatehouse wrap` (see wrap.ts): the gateway in front of the server, served on stdio until the client leaves. */
export async function serveWrap({ command, commandArgs, name, level, args, settings, launched }: WrapRequest): Promise<number> {
  const log = createLogger(level);
  // The name prefixes every tool the client sees: say it even at the default level (warn), unless told to be quiet.
  if (level !== 'error' && level !== 'silent') {
    createLogger('info').info(`serving ${command} as upstream "${name}": its tools are ${name}__<tool>${flag(args, 'name') ? '' : ' (--name sets another)'}`, { upstream: name });
  }
  const dataDir = resolve(flag(args, 'data-dir') ?? defaultWrapDataDir());
  const say = (message: string) => level !== 'error' && level !== 'silent' && createLogger('info').info(message, { upstream: name });
  const packOptions = { command, args: commandArgs, upstream: name, dataDir, pack: flag(args, 'pack'), settings, none: args.flags['no-pack'] === true, say };
  const { installs: packs, lookOnceRunning } = wrapPacks(packOptions);
  const defaults = defaultConfig();
  const config: GatehouseConfig = {
    ...defaults,
    listen: { ...defaults.listen, http: false, stdio: true },
    dataDir,
    policies: [resolve(flag(args, 'policy') ?? BUNDLED_DEFAULT_POLICY)],
    packs,
    upstreams: { [name]: { command, args: commandArgs, env: {}, cwd: process.cwd(), timeout: DEFAULT_UPSTREAM_TIMEOUT_MS } },
  };
  const gateway = createEmbeddedGateway(config, log, { launched: new Map([[name, launched]]), approveCommand: (id) => `${selfCommand()} approvals approve ${id} --data-dir ${config.dataDir}` });
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
