import { isGatewayError } from '../errors.ts';
import { runStart, START_HELP } from './commands/start.ts';
import { runWrap, splitWrapArgs, WRAP_HELP } from './commands/wrap.ts';
import { runApprovals, APPROVALS_HELP } from './commands/approvals.ts';
import { runAudit, AUDIT_HELP } from './commands/audit.ts';
import { runPolicy, POLICY_HELP } from './commands/policy/index.ts';
import { runWorker, WORKER_HELP } from './commands/worker.ts';
import { runDlq, DLQ_HELP } from './commands/dlq.ts';
import { runPackCommand, PACK_HELP } from './commands/pack/index.ts';

const HELP = `gatehouse: a governance gateway for MCP tool calls

Usage: gatehouse <command> [options]

Commands:
  start      serve MCP over Streamable HTTP (and stdio) from a config file
  wrap       serve MCP on stdio in front of one stdio MCP server (for an mcpServers entry)
  approvals  list, show, approve or deny pending approvals
  audit      tail, verify or export the audit trail
  policy     check, test, explain and replay policies
  pack       list, show, add, remove and test packs (what known servers' tools do, and rules for them)
  worker     join a worker pool and host its upstreams (distributed mode)
  dlq        list, show, retry or drop jobs that died on an infrastructure failure

Run \`gatehouse <command> --help\` for a command's options.
Exit codes: 0 success, 1 failure, 2 bad usage.`;

/** A command's own arguments, where `--help` counts: by default those before `--`. */
const beforeDoubleDash = (argv: string[]): string[] => (argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv);

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string; ownArgs?: (argv: string[]) => string[] }> = {
  start: { run: runStart, help: START_HELP },
  // `gatehouse wrap npx some-server --help` asks the server, not wrap.
  wrap: { run: runWrap, help: WRAP_HELP, ownArgs: (argv) => splitWrapArgs(argv).options },
  approvals: { run: runApprovals, help: APPROVALS_HELP },
  audit: { run: runAudit, help: AUDIT_HELP },
  policy: { run: runPolicy, help: POLICY_HELP },
  worker: { run: runWorker, help: WORKER_HELP },
  dlq: { run: runDlq, help: DLQ_HELP },
  pack: { run: runPackCommand, help: PACK_HELP },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`gatehouse: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
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
