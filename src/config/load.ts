import { dirname, isAbsolute, resolve } from 'node:path';
import { configSchema, gatehouseConfigSchema, isStdioUpstream, type GatehouseConfig } from './schema.ts';
import { interpolateEnv } from './interpolate.ts';
import { loadYamlFile, validateYaml, type LoadedYaml } from './yaml-file.ts';
import { GatewayError } from '../errors.ts';

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

export function resolveConfig(loaded: LoadedYaml, env: NodeJS.ProcessEnv = process.env): GatehouseConfig {
  let value: unknown;
  try {
    value = interpolateEnv(loaded.value, env);
  } catch (err) {
    if (err instanceof GatewayError) {
      const path = (err.data?.path as (string | number)[]) ?? [];
      const line = loaded.lineOf(path);
      throw new GatewayError('GH_ERR_CONFIG_INVALID', `${loaded.file}${line ? `:${line}` : ''}: ${err.message}`, { data: err.data });
    }
    throw err;
  }
  const config = validateYaml(loaded, gatehouseConfigSchema, 'GH_ERR_CONFIG_INVALID', value);
  return resolvePaths(config, dirname(loaded.file));
}

export function resolvePaths(config: GatehouseConfig, base: string): GatehouseConfig {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const upstreams = Object.fromEntries(
    Object.entries(config.upstreams).map(([name, u]) => [name, isStdioUpstream(u) ? { ...u, cwd: at(u.cwd ?? '.') } : u]),
  );
  return { ...config, dataDir: at(config.dataDir), policies: config.policies.map(at), upstreams };
}

/**
 * What the state commands (approvals, audit) need from a gateway's config: where the state is (the data dir, or
 * Redis in distributed mode) and the approval TTL. Nothing else is read or interpolated, so an approver's shell
 * needs none of the gateway's other secrets.
 */
export function loadStateConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatehouseConfig {
  const path = resolve(file);
  const loaded = loadYamlFile(path, 'GH_ERR_CONFIG_INVALID');
  const raw = (loaded.value ?? {}) as Record<string, unknown>;
  // Distributed mode keeps state in Redis: its URL is the one other value read (and interpolated: it may hold a password).
  const redis = raw.mode === 'distributed' ? interpolateEnv(raw.redis, env) : undefined;
  const partial = validateYaml(loaded, configSchema.pick({ dataDir: true, approvals: true, mode: true, redis: true }), 'GH_ERR_CONFIG_INVALID', {
    dataDir: raw.dataDir,
    approvals: raw.approvals,
    mode: raw.mode,
    redis,
  });
  return defaultConfig({ dataDir: resolve(dirname(path), partial.dataDir), approvals: partial.approvals, mode: partial.mode, ...(partial.redis ? { redis: partial.redis } : {}) });
}

/** The config used when only flags are given (`gatehouse wrap`, or state commands with `--data-dir`). */
export function defaultConfig(overrides: Partial<GatehouseConfig> = {}): GatehouseConfig {
  return { ...configSchema.parse({}), ...overrides };
}
