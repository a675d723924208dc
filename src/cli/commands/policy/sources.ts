import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadYamlFile, validateYaml } from '../../../config/yaml-file.ts';
import { configSchema } from '../../../config/schema.ts';
import { flag, usage, type ParsedArgs } from '../../args.ts';
import { DEFAULT_CONFIG_FILE } from '../../state.ts';

/**
 * Takes every `--policy PATH` (or `--policy=PATH`) out of argv, since parseArgs keeps one value per flag. Paths
 * that follow a `--policy` value without a flag of their own (a shell glob's expansion) are policy paths too.
 */
export function takePolicyPaths(argv: readonly string[]): { paths: string[]; argv: string[] } {
  const paths: string[] = [];
  const rest: string[] = [];
  let following = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === '--policy') {
      const value = argv[++i];
      if (value === undefined) throw usage(`${arg} needs a value`);
      paths.push(value);
      following = true;
    } else if (arg.startsWith('--policy=')) {
      paths.push(arg.slice('--policy='.length));
      following = true;
    } else if (following && !arg.startsWith('-')) {
      paths.push(arg);
    } else {
      following = false;
      rest.push(arg);
    }
  }
  return { paths, argv: rest };
}

/**
 * The policy paths a command decides with: those given with --policy, else the `policies:` of --config, else
 * those of ./gatehouse.yaml. Only `policies:` is read from the config, so no secret needs to be set.
 */
export function policyPathsFor(paths: readonly string[], args: ParsedArgs): string[] {
  if (paths.length > 0) return paths.map((p) => resolve(p));
  const file = flag(args, 'config') ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (!file) throw usage(`no policies: give --policy FILE|DIR, or --config FILE (no ./${DEFAULT_CONFIG_FILE} here)`);
  const path = resolve(file);
  const loaded = loadYamlFile(path, 'GH_ERR_CONFIG_INVALID');
  const raw = (loaded.value ?? {}) as Record<string, unknown>;
  const { policies } = validateYaml(loaded, configSchema.pick({ policies: true }), 'GH_ERR_CONFIG_INVALID', { policies: raw.policies });
  if (policies.length === 0) throw usage(`${path} lists no policies; give --policy FILE|DIR`);
  return policies.map((p) => resolve(dirname(path), p));
}
