import type { GatehouseConfig } from '../config/schema.ts';
import type { PolicyBundle } from '../kernel/bundle.ts';
import { deploymentInstalls, installedFile } from './installed.ts';
import { packPlaces } from './places.ts';
import { loadPolicyBundle } from './policy-bundle.ts';

/** A deployment's whole policy: its policy files and its packs (the config's and the data dir's), validated whole. */
export function loadDeploymentPolicy(config: GatehouseConfig): PolicyBundle {
  return loadPolicyBundle(config.policies, deploymentInstalls(config), packPlaces(config.dataDir));
}

/** The deployment's draft (`shadowPolicies`) with the same packs, or undefined when it has none. */
export function loadShadowPolicy(config: GatehouseConfig): PolicyBundle | undefined {
  return config.shadowPolicies.length > 0 ? loadPolicyBundle(config.shadowPolicies, deploymentInstalls(config), packPlaces(config.dataDir)) : undefined;
}

/** The files besides the policy files whose change reloads the policy: the data dir's pack installs. */
export const deploymentPolicyFiles = (config: GatehouseConfig): string[] => [installedFile(config.dataDir)];
