import { resolve } from 'node:path';
import { parseYamlText, validateYaml } from '../../../config/yaml-file.ts';
import { Kernel } from '../../../kernel/kernel.ts';
import { explainCall } from '../../../kernel/verdict.ts';
import { callSchema, resolveCall, type StatedCall } from '../../../kernel/authoring/call.ts';
import { explainedJson, formatExplanation } from '../../../kernel/authoring/explain-format.ts';
import { flag, parseArgs, usage } from '../../args.ts';
import { bundleFor, gatewayConfigFor, takePolicyPaths } from './sources.ts';
import { toolFactsFor } from './tool-facts.ts';

export const EXPLAIN_HELP = `  gatehouse policy explain --call JSON [--policy FILE|DIR ...] [--config FILE | --data-dir DIR] [--json]
    Decides one call as the live gateway does and shows every rule tried, whether it matched and why not (the
    first criterion that failed), with each when condition's value or error; then the decision: effect, reason,
    remediation, the matching rules, the merged constraints, throttles and approval options, and the snapshot;
    then the constraint check on the arguments (paths, egress, maxArgBytes: which constraint refused which
    argument, with its code) and the verdict. The call has the shape of a test case's call, for example
    '{"tool":"fs__delete","principal":"alice","args":{"path":"/etc"}}'.
    Tool facts (annotations, risk tags, labels, an HTTP upstream's URL) are the gateway's: asked of the gateway
    the config describes when it runs (POST <listen.http>/api/policy/explain), else read from the catalog it
    recorded (<dataDir>/catalog.json). The output says which, and when the tool is in neither. Facts the call
    states itself win over those.
    --policy FILE|DIR   the bundle to decide with (repeatable); default: the policies of the config
    --config FILE       the gateway's config: its policies, data dir and listen address (default ./gatehouse.yaml)
    --data-dir DIR      read the tool facts recorded in DIR instead (for \`gatehouse wrap\`: ~/.gatehouse), asking no gateway
    --json              print { decision, rules, verdict, facts, input } as JSON`;

export async function runExplain(argv: string[]): Promise<number> {
  const taken = takePolicyPaths(argv);
  const args = parseArgs(taken.argv, { values: ['call', 'config', 'data-dir'], booleans: ['json'] });
  if (args.positionals.length > 0) throw usage(`unexpected argument "${args.positionals[0]}"`);
  const text = flag(args, 'call');
  if (!text) throw usage('missing --call JSON');
  const call = parseCall(text);
  const config = gatewayConfigFor(args);
  const kernel = new Kernel(bundleFor(taken.paths, config));
  const dataDir = flag(args, 'data-dir');
  const { facts, note } = await toolFactsFor(call, dataDir ? { dataDir: resolve(dataDir), http: false } : config);
  const input = resolveCall(call, facts);
  const explained = { input, ...explainCall(kernel, input), facts: note };
  console.log(args.flags.json ? JSON.stringify(explainedJson(explained), null, 2) : formatExplanation(explained));
  return 0;
}

/** The --call text is JSON (YAML flow syntax works too); a bad one is a usage error that names the field. */
const parseCall = (text: string): StatedCall => validateYaml(parseYamlText('--call', text, 'GH_ERR_USAGE'), callSchema, 'GH_ERR_USAGE');
