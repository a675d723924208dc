import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { configSchema, gatehouseConfigSchema, isStdioUpstream, type GatehouseConfig } from './schema.ts';
import { interpolateEnv, type UnsetVariable } from './interpolate.ts';
import { checkYaml, loadYamlFile, type LoadedYaml } from './yaml-file.ts';
import { invalid, type Problem } from './problems.ts';

export interface LoadedConfig {
  file: string;
  config: GatehouseConfig;
}

/**
 * Loads, interpolates and validates a config file. Relative paths in it (dataDir, policies, upstream cwd)
 * resolve against the file's own folder, so the gateway behaves the same from any working directory.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const path = resolve(file);
  const loaded = loadYamlFile(path, 'GH_ERR_CONFIG_INVALID');
  return { file: path, config: resolveConfig(loaded, env) };
}

/**
 * Interpolates and validates a loaded config, reporting every mistake in one GH_ERR_CONFIG_INVALID (`data.problems`,
 * each with its line and key path): every unset `${env:…}`, every invalid value, and every policy file that is not
 * there. `exists` is how policy paths are looked up (tests give their own).
 */
export function resolveConfig(loaded: LoadedYaml, env: NodeJS.ProcessEnv = process.env, exists: (path: string) => boolean = existsSync): GatehouseConfig {
  const base = dirname(loaded.file);
  const { value, unset } = interpolateEnv(loaded.value, env);
  const missing: Problem[] = [];
  for (const key of ['policies', 'shadowPolicies'] as const) {
    const paths = (value as Partial<Record<typeof key, unknown>> | undefined)?.[key];
    if (!Array.isArray(paths)) continue;
    paths.forEach((path, i) => {
      if (typeof path === 'string' && !exists(resolve(base, path))) {
        missing.push({ file: loaded.file, line: loaded.lineOf([key, i]), path: [key, i], message: `there is no policy file or folder at ${resolve(base, path)} (relative paths start at the config file's folder)` });
      }
    });
  }
  const config = settle(loaded, unset, checkYaml(loaded, gatehouseConfigSchema, value), missing);
  return resolvePaths(config, base);
}

/**
 * The data, or one GH_ERR_CONFIG_INVALID with every problem: the unset variables, the others given, and the
 * validation's. A value built from an unset variable is not what the author wrote: only the variable is reported.
 */
function settle<T>(loaded: LoadedYaml, unset: readonly UnsetVariable[], checked: { data: T } | { problems: Problem[] }, others: Problem[] = []): T {
  const fromUnset = unset.map(({ path, variable }) => ({ file: loaded.file, line: loaded.lineOf(path), path, message: `the environment variable ${variable} is not set` }));
  const invalidValues = 'problems' in checked ? checked.problems.filter((p) => !unset.some((u) => startsWith(p.path, u.path))) : [];
  const problems = [...fromUnset, ...others, ...invalidValues];
  if (problems.length > 0 || 'problems' in checked) throw invalid('GH_ERR_CONFIG_INVALID', byLine(problems));
  return checked.data;
}

const startsWith = (path: readonly (string | number)[], prefix: readonly (string | number)[]): boolean => prefix.every((key, i) => path[i] === key);

/** In the order of the file, so a person reads them top to bottom. */
const byLine = (problems: Problem[]): Problem[] => problems.map((p, i) => ({ p, i })).sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.i - b.i).map(({ p }) => p);

export function resolvePaths(config: GatehouseConfig, base: string): GatehouseConfig {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const upstreams = Object.fromEntries(
    Object.entries(config.upstreams).map(([name, u]) => [name, isStdioUpstream(u) ? { ...u, cwd: at(u.cwd ?? '.') } : u]),
  );
  // A pack named by a path (not a bundled pack's bare name) is a folder beside the config.
  const packs = config.packs.map((p) => (/^[./~]/.test(p.name) || p.name.includes('/') ? { ...p, name: at(p.name) } : p));
  return { ...config, dataDir: at(config.dataDir), policies: config.policies.map(at), shadowPolicies: config.shadowPolicies.map(at), packs, upstreams };
}

/**
 * What the state commands (approvals, audit) need from a gateway's config: where the state is (the data dir, or
 * Redis in distributed mode), the approval TTL and, with `audit`, the audit settings (the checkpoint key that
 * `audit verify` and `audit pubkey` use). Nothing else is read or interpolated, so an approver's shell needs none
 * of the gateway's other secrets.
 */
export function loadStateConfig(file: string, env: NodeJS.ProcessEnv = process.env, options: { audit?: boolean } = {}): GatehouseConfig {
  const path = resolve(file);
  const loaded = loadYamlFile(path, 'GH_ERR_CONFIG_INVALID');
  const raw = (loaded.value ?? {}) as Record<string, unknown>;
  // Distributed mode keeps state in Redis: its URL is read and interpolated (it may hold a password), as is the audit
  // key for the audit commands.
  const secrets = { ...(raw.mode === 'distributed' ? { redis: raw.redis } : {}), ...(options.audit ? { audit: raw.audit } : {}) };
  const { value: interpolated, unset } = interpolateEnv(secrets, env);
  const partial = settle(
    loaded,
    unset,
    checkYaml(loaded, configSchema.pick({ dataDir: true, approvals: true, mode: true, redis: true, audit: true }), { dataDir: raw.dataDir, approvals: raw.approvals, mode: raw.mode, ...(interpolated as object) }),
  );
  const read = { approvals: partial.approvals, mode: partial.mode, ...(partial.redis ? { redis: partial.redis } : {}), ...(options.audit ? { audit: partial.audit } : {}) };
  return defaultConfig({ dataDir: resolve(dirname(path), partial.dataDir), ...read });
}

/**
 * What the policy commands (explain, test, replay) need from a gateway's config: its policies, packs, data dir, mode
 * and where it listens. Only the packs are interpolated (their parameters may come from the environment, as the
 * gateway reads them); an unset variable there is a config error naming it. No other secret needs to be set.
 */
export function loadPolicyConfig(file: string, env: NodeJS.ProcessEnv = process.env): Pick<GatehouseConfig, 'policies' | 'packs' | 'dataDir' | 'mode' | 'listen'> {
  const path = resolve(file);
  const loaded = loadYamlFile(path, 'GH_ERR_CONFIG_INVALID');
  const raw = (loaded.value ?? {}) as Record<string, unknown>;
  const { value: packs, unset } = interpolateEnv(raw.packs, env);
  const picked = settle(
    loaded,
    unset.map((u) => ({ ...u, path: ['packs', ...u.path] })),
    checkYaml(loaded, configSchema.pick({ policies: true, dataDir: true, listen: true, packs: true, mode: true }), { policies: raw.policies, dataDir: raw.dataDir, listen: raw.listen, packs, mode: raw.mode }),
  );
  const { policies, dataDir, packs: placed } = resolvePaths({ ...defaultConfig(), ...picked }, dirname(path));
  return { ...picked, policies, dataDir, packs: placed };
}

/** The config used when only flags are given (`gatehouse wrap`, or state commands with `--data-dir`). */
export function defaultConfig(overrides: Partial<GatehouseConfig> = {}): GatehouseConfig {
  return { ...configSchema.parse({}), ...overrides };
}
