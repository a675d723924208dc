import { resolve } from 'node:path';
import { flag, usage, type ParsedArgs } from '../../args.ts';
import { defaultWrapDataDir } from '../../state.ts';
import { gatewayConfigFor } from '../policy/sources.ts';
import { findPack, packPlaces, type PackPlaces } from '../../../packs/places.ts';
import { loadPack, type Pack } from '../../../packs/pack.ts';
import type { PackInstall } from '../../../packs/install.ts';

/** The deployment a pack command works on: where its packs are installed, and what else its policy holds. */
export interface PackDeployment {
  dataDir: string;
  policies: string[];
  /** The config's own `packs:` (which `pack add` and `remove` leave alone: the file is the operator's). */
  configPacks: PackInstall[];
  configFile?: string;
  places: PackPlaces;
}

export const DEPLOYMENT_FLAGS = ['config', 'data-dir'];

/** `--data-dir` (for `wrap`: its data dir), else `--config` or ./gatehouse.yaml, else wrap's per-user data dir. */
export function packDeployment(args: ParsedArgs, mutates = false): PackDeployment {
  const dataDir = flag(args, 'data-dir');
  if (dataDir) return { dataDir: resolve(dataDir), policies: [], configPacks: [], places: packPlaces(resolve(dataDir)) };
  const config = gatewayConfigFor(args);
  if (config?.mode === 'distributed' && mutates) {
    throw usage(`${config.file} is a distributed deployment: list the pack in its packs: instead, so that every replica loads the same packs (a data dir is one machine's)`);
  }
  if (config) return { dataDir: config.dataDir, policies: config.policies, configPacks: config.packs, configFile: config.file, places: packPlaces(config.dataDir) };
  return { dataDir: defaultWrapDataDir(), policies: [], configPacks: [], places: packPlaces(defaultWrapDataDir()) };
}

/** The pack a command names (a bare name in the deployment's places, or a folder); a usage error when none. */
export function namedPack(name: string | undefined, places: PackPlaces): Pack {
  if (!name) throw usage('name a pack (see `gatehouse pack list`), or give a pack folder');
  const dir = findPack(name.includes('/') ? resolve(name) : name, places);
  if (!dir) throw usage(`there is no pack "${name}" (see \`gatehouse pack list\`)`);
  return loadPack(dir);
}
