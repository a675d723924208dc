import { realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path';
import { packageFile } from '../protocol/package-files.ts';

const BIN = packageFile('bin/gatehouse.js');

/**
 * How the user runs this very CLI from where they are: `gatehouse` when that name on the PATH is this one
 * (after `npm link`), else the script's path (`./bin/gatehouse.js` in the clone), which needs nothing installed.
 */
export function selfCommand(cwd: string = process.cwd(), path: string = process.env.PATH ?? ''): string {
  const bin = realpathSync(BIN);
  for (const dir of path.split(delimiter)) {
    if (dir && realOrSelf(join(dir, 'gatehouse')) === bin) return 'gatehouse';
  }
  const fromHere = relative(cwd, BIN);
  return fromHere.startsWith('..') || isAbsolute(fromHere) ? BIN : `./${fromHere}`;
}

/** A state command's `--config`, when the config is not the `./gatehouse.yaml` it would find by itself. */
export function configFlag(configFile: string, cwd: string = process.cwd()): string {
  if (resolve(cwd, 'gatehouse.yaml') === resolve(configFile)) return '';
  const fromHere = relative(cwd, configFile);
  return ` --config ${fromHere.startsWith('..') || isAbsolute(fromHere) ? resolve(configFile) : fromHere}`;
}

function realOrSelf(file: string): string | undefined {
  try {
    return realpathSync(file);
  } catch {
    return undefined;
  }
}
