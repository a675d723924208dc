import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GatehouseConfig } from '../../../config/schema.ts';
import { defaultConfig, loadPolicyConfig } from '../../../config/load.ts';
import { withListenOverride } from '../../../config/listen.ts';
import { flag, usage, type ParsedArgs } from '../../args.ts';
import { DEFAULT_CONFIG_FILE } from '../../state.ts';
import { loadPolicyFiles, type PolicyBundle } from '../../../kernel/bundle.ts';
import { loadDeploymentPolicy } from '../../../packs/deployment.ts';

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

/** What the policy commands read from a gateway's config: its policies, where it keeps state, where it listens. */
export interface GatewayConfigFacts {
  file: string;
  policies: string[];
  dataDir: string;
  /** The config's `packs:` (a pack named by a path, resolved against the file's folder). */
  packs: GatehouseConfig['packs'];
  mode: GatehouseConfig['mode'];
  /** `listen.http` (`host:port`), or false when the gateway serves no HTTP. */
  http: string | false;
}

/**
 * The config named by --config, else ./gatehouse.yaml when there is one: its policies, packs (their `${env:…}`
 * parameters filled in), data dir and listen address, nothing else (loadPolicyConfig), so no other secret need be set.
 */
export function gatewayConfigFor(args: ParsedArgs): GatewayConfigFacts | undefined {
  const file = flag(args, 'config') ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (!file) return undefined;
  const picked = loadPolicyConfig(file);
  // The gateway to ask listens where `start` put it: $GATEHOUSE_LISTEN moves it as it moves `start`.
  const { http } = withListenOverride(picked, undefined).listen;
  return { file: resolve(file), policies: picked.policies, dataDir: picked.dataDir, packs: picked.packs, mode: picked.mode, http };
}

/**
 * The policy paths a command decides with: those given with --policy, else the `policies:` of the config (see
 * gatewayConfigFor).
 */
export function policyPathsFor(paths: readonly string[], config: GatewayConfigFacts | undefined): string[] {
  if (paths.length > 0) return paths.map((p) => resolve(p));
  if (!config) throw usage(`no policies: give --policy FILE|DIR, or --config FILE (no ./${DEFAULT_CONFIG_FILE} here)`);
  if (config.policies.length === 0 && config.packs.length === 0) throw usage(`${config.file} lists no policies; give --policy FILE|DIR`);
  return config.policies;
}

/** The bundle a command decides with: the --policy files alone, else the config's whole policy (its packs too). */
export function bundleFor(paths: readonly string[], config: GatewayConfigFacts | undefined): PolicyBundle {
  const files = policyPathsFor(paths, config);
  if (paths.length > 0 || !config) return loadPolicyFiles(files);
  return loadDeploymentPolicy({ ...defaultConfig(), policies: files, dataDir: config.dataDir, packs: config.packs, mode: config.mode });
}
