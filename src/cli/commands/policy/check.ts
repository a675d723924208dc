import { loadPolicyFiles } from '../../../kernel/bundle.ts';
import { parseArgs, usage } from '../../args.ts';

export const CHECK_HELP = `  gatehouse policy check FILE|DIR...
    Validates the policy files as one bundle; a DIR contributes its *.yaml and *.yml files (not the *_test.yaml).
    Errors name the file, line and key (exit 1). On success it prints the rule count, the default effect and the
    bundle's snapshot hash, which every decision is stamped with.`;

export async function runCheck(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {});
  if (args.positionals.length === 0) throw usage('missing the policy FILE(s) or DIR(s)');
  const bundle = loadPolicyFiles(args.positionals);
  console.log(`OK: ${bundle.rules.length} rules from ${bundle.files.join(', ')}; default ${bundle.default}`);
  console.log(`snapshot ${bundle.snapshot}`);
  return 0;
}
