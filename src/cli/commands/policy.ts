import { resolve } from 'node:path';
import { loadPolicyFiles } from '../../kernel/bundle.ts';
import { parseArgs, usage } from '../args.ts';

export const POLICY_HELP = `Usage: gatehouse policy check FILE...

Validates the policy files as one bundle. Errors name the file, line and key; on success it prints the rule
count, the default effect and the bundle's snapshot hash (the hash every decision is stamped with).`;

export async function runPolicy(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {});
  const [action, ...files] = args.positionals;
  if (action !== 'check') throw usage(action ? `unknown action "${action}"` : 'missing an action: check');
  if (files.length === 0) throw usage('missing the policy FILE(s)');
  const bundle = loadPolicyFiles(files.map((f) => resolve(f)));
  console.log(`OK: ${bundle.rules.length} rules from ${bundle.files.join(', ')}; default ${bundle.default}`);
  console.log(`snapshot ${bundle.snapshot}`);
  return 0;
}
