import { availablePacks, BUNDLED_PACKS } from '../../../packs/places.ts';
import { loadPack, type Pack } from '../../../packs/pack.ts';
import type { LaunchedServer } from '../../../packs/match.ts';
import { launchedPackage } from '../../upstream-name.ts';

/** The packs shipped with Gatehouse: the ones wrap and start may propose for a server by themselves. */
export const bundledPacks = (): Pack[] => availablePacks({ search: [BUNDLED_PACKS] }).map(({ dir }) => loadPack(dir));

/** A server as its command line states it, with the npm package it runs when there is one. */
export function launchedServer(command: string, args: readonly string[]): LaunchedServer {
  const found = launchedPackage(command, args);
  return { command, args, ...(found ? { package: found } : {}) };
}
