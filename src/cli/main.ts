import { isGatewayError } from '../errors.ts';

const HELP = `gatehouse: a governance gateway for MCP tool calls

Usage: gatehouse <command> [options]

Commands:
  start      serve MCP over Streamable HTTP (and stdio) from a config file
  wrap       serve MCP on stdio in front of one stdio MCP server (for an mcpServers entry)
  approvals  list, show, approve or deny pending approvals
  audit      tail, verify or export the audit trail
  policy     check, test, explain, replay and shadow policies
  pack       list, show, add, remove and test packs (what known servers' tools do, and rules for them)
  worker     join a worker pool and host its upstreams (distributed mode)
  dlq        list, show, retry or drop jobs that died on an infrastructure failure
  tools      pinned tool definitions: list them, diff, accept or reject a quarantined change

Run \`gatehouse <command> --help\` for a command's options.
Exit codes: 0 success, 1 failure, 2 bad usage.`;

/** A command's own arguments, where `--help` counts: by default those before `--`. */
const beforeDoubleDash = (argv: string[]): string[] => (argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv);

interface Command {
  run: (argv: string[]) => Promise<number>;
  help: string;
  ownArgs?: (argv: string[]) => string[];
}

/** A command whose module is loaded only when it runs: `audit verify` need not load the gateway `start` serves. */
const lazy = <M>(load: () => Promise<M>, command: (m: M) => Command) => async (): Promise<Command> => command(await load());

const COMMANDS: Record<string, () => Promise<Command>> = {
  start: lazy(() => import('./commands/start.ts'), (m) => ({ run: m.runStart, help: m.START_HELP })),
  // `gatehouse wrap npx some-server --help` asks the server, not wrap.
  wrap: lazy(() => import('./commands/wrap.ts'), (m) => ({ run: m.runWrap, help: m.WRAP_HELP, ownArgs: (argv) => m.splitWrapArgs(argv).options })),
  approvals: lazy(() => import('./commands/approvals.ts'), (m) => ({ run: m.runApprovals, help: m.APPROVALS_HELP })),
  audit: lazy(() => import('./commands/audit.ts'), (m) => ({ run: m.runAudit, help: m.AUDIT_HELP })),
  policy: lazy(() => import('./commands/policy/index.ts'), (m) => ({ run: m.runPolicy, help: m.POLICY_HELP })),
  worker: lazy(() => import('./commands/worker.ts'), (m) => ({ run: m.runWorker, help: m.WORKER_HELP })),
  dlq: lazy(() => import('./commands/dlq.ts'), (m) => ({ run: m.runDlq, help: m.DLQ_HELP })),
  tools: lazy(() => import('./commands/tools.ts'), (m) => ({ run: m.runTools, help: m.TOOLS_HELP })),
  pack: lazy(() => import('./commands/pack/index.ts'), (m) => ({ run: m.runPackCommand, help: m.PACK_HELP })),
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name ? 0 : 2;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    console.error(`gatehouse: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  const command = await load();
  const options = (command.ownArgs ?? beforeDoubleDash)(rest);
  if (options.includes('--help') || options.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (isGatewayError(err, 'GH_ERR_USAGE')) {
      console.error(`gatehouse ${name}: ${err.message}\n\n${command.help}`);
      return 2;
    }
    if (isGatewayError(err) && Array.isArray(err.data?.problems) && err.data.problems.length > 1) {
      // Every mistake at once, one a line, so a person fixes them all in one go.
      console.error(`gatehouse ${name}: ${err.data.problems.length} problems [${err.code}]\n${err.message.replace(/^/gm, '  ')}`);
      return 1;
    }
    if (isGatewayError(err)) {
      console.error(`gatehouse ${name}: ${err.message} [${err.code}]`);
      return 1;
    }
    console.error(`gatehouse ${name}: ${(err as Error).stack ?? err}`);
    return 1;
  }
}
