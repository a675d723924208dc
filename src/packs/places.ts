import { existsSync, readdirSync } from 'node:fs';
import { join, sep } from 'node:path';
import { packageFile } from '../protocol/package-files.ts';

/** The packs that ship with Gatehouse (`packs/` at the top of the install). */
export const BUNDLED_PACKS = packageFile('packs') + sep;

/** Where bare pack names are looked up, first match wins: the data dir's added packs, then the bundled ones. */
export interface PackPlaces {
  search: string[];
}

export const packPlaces = (dataDir: string): PackPlaces => ({ search: [join(dataDir, 'packs'), BUNDLED_PACKS] });

/** The folder of the pack a name means: a path (with a `/`) as it is, a bare name in the places, in order. */
export function findPack(name: string, places: PackPlaces): string | undefined {
  if (name.includes('/')) return existsSync(join(name, 'pack.yaml')) ? name : undefined;
  return places.search.map((dir) => join(dir, name)).find((dir) => existsSync(join(dir, 'pack.yaml')));
}

/** Every pack in the places by name (the first place that has a name wins), with its folder. */
export function availablePacks(places: PackPlaces): { name: string; dir: string }[] {
  const found = new Map<string, string>();
  for (const place of places.search) {
    if (!existsSync(place)) continue;
    for (const name of readdirSync(place).sort()) {
      const dir = join(place, name);
      if (!found.has(name) && existsSync(join(dir, 'pack.yaml'))) found.set(name, dir);
    }
  }
  return [...found].map(([name, dir]) => ({ name, dir })).sort((a, b) => (a.name < b.name ? -1 : 1));
}
