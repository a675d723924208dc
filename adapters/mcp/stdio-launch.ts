import { spawn, type ChildProcess } from 'node:child_process';

/** How a stdio server is run: its command line, its own environment, and where. */
export interface StdioCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

/** Inherited from our own environment: enough to find and run programs, and nothing secret. */
const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'TMPDIR', 'LANG', 'LC_ALL', 'SYSTEMROOT', 'NODE_OPTIONS', 'npm_config_cache'];

/** A server process just started: `started` settles once it runs (or could not: a command not found). */
export interface LaunchedServer {
  child: ChildProcess;
  command: string;
  started: Promise<void>;
  /** What it wrote to stderr until now, and no more collecting: the adopter reads stderr from here on. */
  takeStderr(): Buffer[];
}

/**
 * Starts a stdio server. Light on purpose (node:child_process only): `gatehouse wrap` starts its server with this
 * before it loads the rest of Gatehouse, so the two start-ups overlap, and the upstream adopts the process.
 */
export function launchStdioServer(options: StdioCommand): LaunchedServer {
  const env: Record<string, string> = {};
  for (const key of INHERITED_ENV) if (process.env[key] !== undefined) env[key] = process.env[key]!;
  // `node` means the Node that runs Gatehouse: no surprise from whichever node comes first on PATH.
  const command = options.command === 'node' ? process.execPath : options.command;
  const child = spawn(command, options.args, { cwd: options.cwd, env: { ...env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  // Listened to at once: an 'error' with no listener (ENOENT) would end the process before anyone adopts the child.
  const started = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new Error(`cannot run ${command}: not found (check the command, the PATH and the cwd)`, { cause: err }) : err);
    });
  });
  started.catch(() => undefined);
  // Kept until adopted: Node discards the output nobody reads when a process exits, and a server that dies before
  // the gateway is built must still be able to say why.
  const stderr: Buffer[] = [];
  const collect = (chunk: Buffer) => stderr.push(chunk);
  child.stderr!.on('data', collect);
  const takeStderr = () => {
    child.stderr!.off('data', collect);
    return stderr.splice(0);
  };
  return { child, command, started, takeStderr };
}
