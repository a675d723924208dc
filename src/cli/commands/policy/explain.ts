import { parseYamlText, validateYaml } from '../../../config/yaml-file.ts';
import { Kernel } from '../../../kernel/kernel.ts';
import type { DecisionInput } from '../../../kernel/decision.ts';
import { callSchema } from '../../../policy-tools/call.ts';
import { explanationJson, formatExplanation } from '../../../policy-tools/explain-format.ts';
import { loadPolicyFiles } from '../../../kernel/bundle.ts';
import { flag, parseArgs, usage } from '../../args.ts';
import { policyPathsFor, takePolicyPaths } from './sources.ts';

export const EXPLAIN_HELP = `  gatehouse policy explain --call JSON [--policy FILE|DIR ...] [--config FILE] [--json]
    Decides one call and shows every rule tried, whether it matched and why not (the first criterion that failed),
    with each when condition's value or error; then the decision: effect, reason, remediation, the matching rules,
    the merged constraints, throttles and approval options, and the snapshot. The call has the shape of a test
    case's call, for example '{"tool":"fs__delete","principal":"alice","args":{"path":"/etc"}}'.
    --policy FILE|DIR   the bundle to decide with (repeatable); default: the policies of the config
    --config FILE       the gateway's config, for its policies: list (default ./gatehouse.yaml)
    --json              print the explanation as JSON ({ decision, rules })`;

export async function runExplain(argv: string[]): Promise<number> {
  const taken = takePolicyPaths(argv);
  const args = parseArgs(taken.argv, { values: ['call', 'config'], booleans: ['json'] });
  if (args.positionals.length > 0) throw usage(`unexpected argument "${args.positionals[0]}"`);
  const text = flag(args, 'call');
  if (!text) throw usage('missing --call JSON');
  const input = parseCall(text);
  const kernel = new Kernel(loadPolicyFiles(policyPathsFor(taken.paths, args)));
  const explanation = kernel.explain(input);
  console.log(args.flags.json ? explanationJson(explanation) : formatExplanation(input, explanation));
  return 0;
}

/** The --call text is JSON (YAML flow syntax works too); a bad one is a usage error that names the field. */
const parseCall = (text: string): DecisionInput => validateYaml(parseYamlText('--call', text, 'GH_ERR_USAGE'), callSchema, 'GH_ERR_USAGE');
