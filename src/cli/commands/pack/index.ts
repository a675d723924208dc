import { parseArgs, usage } from '../../args.ts';
import { availablePacks } from '../../../packs/places.ts';
import { loadPack } from '../../../packs/pack.ts';
import { runPackTests } from '../../../packs/pack-tests.ts';
import { formatReport } from '../policy/test.ts';
import { runAdd, runRemove } from './add-remove.ts';
import { DEPLOYMENT_FLAGS, namedPack, packDeployment } from './deployment.ts';
import { runList, runShow } from './list-show.ts';

export const PACK_HELP = `Usage: gatehouse pack <list|show|add|remove|test> [options]

Packs are data (pack.yaml, tools.yaml, policies/, tests/): what a known MCP server's tools do, and overlay rules
for them. Nothing in a pack is ever run. Packs come bundled with Gatehouse (packs/) or from a folder.

  gatehouse pack list [--json]
    The packs there are (bundled, and added to the data dir), with versions, and where each is installed.
  gatehouse pack show NAME|DIR [--json]
    What a pack labels (each tool's risk tags, path/URL/command/SQL arguments, annotation fixes), the rules it
    adds, its parameters, and the command it runs the server with.
  gatehouse pack add NAME|DIR [--set KEY=VALUE]... [--upstream NAME]
    Installs a pack in the data dir (<dataDir>/packs.yaml; a DIR is copied to <dataDir>/packs/ first) for an
    upstream (default: the pack's own upstream name, which is what \`gatehouse wrap\` calls that server). The whole
    policy is validated with it first; a running gateway reloads it as it reloads a policy edit. Warns about tools
    the upstream lists that the pack does not know, and definitions that differ from the pack's pins.
  gatehouse pack remove NAME [--upstream NAME]
    Uninstalls it from the data dir (packs in the config's packs: are the config's to change).
  gatehouse pack test [NAME|DIR]
    Runs a pack's tests/*_test.yaml (every pack's, without a name) with its testParams, as the gateway decides.

Every action takes --config FILE (default ./gatehouse.yaml: its data dir and policies) or --data-dir DIR (for
\`gatehouse wrap\`: ~/.gatehouse, where wrap reads added packs from).
Exit codes: 0 success, 1 failure (invalid pack or policy, failed test), 2 bad usage.`;

async function runTestAction(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: DEPLOYMENT_FLAGS, booleans: ['strict-coverage'] });
  if (args.positionals.length > 1) throw usage('name one pack, or none for all');
  const { places } = packDeployment(args);
  const packs = args.positionals.length === 1 ? [namedPack(args.positionals[0], places)] : availablePacks(places).map(({ dir }) => loadPack(dir));
  let failed = 0;
  for (const pack of packs) {
    const { report, files } = runPackTests(pack);
    console.log(`${pack.manifest.name} ${pack.manifest.version}`);
    console.log(formatReport(report, files.length, args.flags['strict-coverage'] === true, undefined).replace(/^/gm, '  '));
    if (report.failed > 0 || (args.flags['strict-coverage'] && report.gaps.length > 0)) failed++;
  }
  return failed > 0 ? 1 : 0;
}

const ACTIONS: Record<string, (argv: string[]) => Promise<number>> = { list: runList, show: runShow, add: runAdd, remove: runRemove, test: runTestAction };

export async function runPackCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const run = action === undefined ? undefined : ACTIONS[action];
  if (!run) throw usage(action && !action.startsWith('-') ? `unknown action "${action}"` : 'missing an action: list, show, add, remove or test');
  return run(rest);
}
