import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultConfig, loadStateConfig } from '../config/load.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import { flag, type ParsedArgs } from './args.ts';

export const DEFAULT_CONFIG_FILE = 'gatehouse.yaml';

/** The data dir `gatehouse wrap` uses when none is given: per user, since MCP hosts start it from anywhere. */
export const defaultWrapDataDir = (): string => process.env.GATEHOUSE_DATA_DIR ?? join(homedir(), '.gatehouse');

/**
 * The config a state command (approvals, audit) works on: `--data-dir` wins, then `--config`, then
 * ./gatehouse.yaml if present, then the per-user data dir that `wrap` uses. `audit` also reads the config's audit
 * settings (the audit commands).
 */
export function stateConfig(args: ParsedArgs, options: { audit?: boolean } = {}): GatehouseConfig {
  const dataDir = flag(args, 'data-dir');
  if (dataDir) return defaultConfig({ dataDir: resolve(dataDir) });
  const file = flag(args, 'config') ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (file) return loadStateConfig(file, process.env, options);
  return defaultConfig({ dataDir: defaultWrapDataDir() });
}

export const STATE_FLAGS = { values: ['config', 'data-dir'] };

/** Who runs a command that decides something (`--as` overrides it): the local user's name. */
export function localUser(): string {
  try {
    return userInfo().username || 'local';
  } catch {
    return 'local';
  }
}
