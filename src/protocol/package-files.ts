import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder Gatehouse is installed in (its package.json's), found from this module whether it runs from source
 * (src/protocol/) or compiled (dist/src/protocol/): the data files that ship beside the code (packs/, policies/,
 * bin/, the console's assets) are found from here, the same in both.
 */
export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A file or folder of the installed package, by its path in the repository (`packs/`, `policies/default.yaml`). */
export const packageFile = (...path: string[]): string => join(PACKAGE_ROOT, ...path);

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'gatehouse.js'))) return dir;
    if (dirname(dir) === dir) throw new Error(`Gatehouse's package folder was not found above ${from}`);
  }
}
