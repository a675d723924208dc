import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { stringify } from 'yaml';
import { loadYamlFile, validateYaml } from '../config/yaml-file.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { LocatedInstall } from './policy-bundle.ts';
import type { PackInstall } from './install.ts';

/** The packs `gatehouse pack add` installed, beside the config's `packs:`: `<dataDir>/packs.yaml`. */
export const installedFile = (dataDir: string): string => join(dataDir, 'packs.yaml');

const installedSchema = z.strictObject({
  packs: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        upstream: z.string().regex(/^[A-Za-z0-9-]{1,24}$/, 'upstream names are 1-24 letters, digits or dashes').optional(),
        params: z.record(z.string(), z.unknown()).default({}),
      }),
    )
    .default([]),
});

/** The data dir's installs, each with its line in packs.yaml (for its problems). A broken file is GH_ERR_POLICY_INVALID. */
export function readInstalled(dataDir: string): LocatedInstall[] {
  const file = installedFile(dataDir);
  if (!existsSync(file)) return [];
  const loaded = loadYamlFile(file, 'GH_ERR_POLICY_INVALID');
  const { packs } = validateYaml(loaded, installedSchema, 'GH_ERR_POLICY_INVALID');
  return packs.map((p, i) => ({ ...p, origin: { file, line: loaded.lineOf(['packs', i]) } }));
}

/** Replaces the data dir's installs at once (write, then rename), so a reload never reads half a file. */
export function writeInstalled(dataDir: string, installs: readonly PackInstall[]): void {
  const file = installedFile(dataDir);
  const text = `# Written by \`gatehouse pack add\` and \`pack remove\`; the gateway reloads its policy when it changes.\n${stringify({ packs: installs.map(({ name, upstream, params }) => ({ name, ...(upstream ? { upstream } : {}), params })) })}`;
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/**
 * Every pack a deployment installs: the config's `packs:`, then the data dir's. In distributed mode only the
 * config's: every replica reads the same config, while a data dir is one machine's, so replicas could differ.
 */
export const deploymentInstalls = (config: Pick<GatehouseConfig, 'packs' | 'dataDir' | 'mode'>): LocatedInstall[] =>
  config.mode === 'distributed' ? [...config.packs] : [...config.packs, ...readInstalled(config.dataDir)];
