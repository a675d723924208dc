import { availablePacks, BUNDLED_PACKS, packPlaces } from '../../packs/places.ts';
import { loadPack, type Pack } from '../../packs/pack.ts';
import { packFits, paramsFromCommand, type LaunchedServer } from '../../packs/match.ts';
import { parseSetting } from '../../packs/params.ts';
import { readInstalled } from '../../packs/installed.ts';
import { loadPolicyBundle } from '../../packs/policy-bundle.ts';
import type { PackInstall } from '../../packs/install.ts';
import { isGatewayError } from '../../errors.ts';
import { usage } from '../args.ts';
import { launchedPackage } from '../upstream-name.ts';
import { namedPack } from './pack/deployment.ts';

export { takeSettings } from './pack/settings.ts';

export interface WrapPackOptions {
  command: string;
  args: readonly string[];
  upstream: string;
  dataDir: string;
  /** --pack: a pack's name or folder. */
  pack?: string;
  settings: [string, string][];
  /** --no-pack. */
  none: boolean;
  /** What wrap tells the user on stderr. */
  say(message: string): void;
}

/**
 * The pack `wrap` applies to its server: the one --pack names, with the parameters the server's command states and
 * --set gives; else the one bundled pack whose match fits the command, if it installs with what the command states
 * (said on stderr either way); none with --no-pack, or when the data dir already installs a pack for this upstream.
 */
export function wrapPacks(o: WrapPackOptions): PackInstall[] {
  if (o.none) return [];
  const places = packPlaces(o.dataDir);
  const server: LaunchedServer = { command: o.command, args: o.args, ...withPackage(o.command, o.args) };
  const install = (pack: Pack): PackInstall => ({
    name: pack.dir,
    upstream: o.upstream,
    params: { ...paramsFromCommand(pack, server, process.cwd()), ...Object.fromEntries(o.settings.map(([k, v]) => [k, parseSetting(pack.manifest.params[k], v)])) },
  });
  if (o.pack) return [install(namedPack(o.pack, places))];
  if (o.settings.length > 0) throw usage('--set gives a parameter of the pack that --pack names');
  if (readInstalled(o.dataDir).length > 0) return [];
  const fits = availablePacks({ search: [BUNDLED_PACKS] }).map(({ dir }) => loadPack(dir)).filter((pack) => packFits(pack, server));
  if (fits.length > 1) o.say(`several bundled packs fit this server (${fits.map((p) => p.manifest.name).join(', ')}): none applied; choose one with --pack NAME`);
  if (fits.length !== 1) return [];
  const [pack] = fits;
  const chosen = install(pack);
  try {
    loadPolicyBundle([], [chosen], places);
  } catch (err) {
    if (!isGatewayError(err, 'GH_ERR_POLICY_INVALID')) throw err;
    o.say(`the bundled ${pack.manifest.name} pack fits this server but cannot be applied as it is started (${err.message.split('\n')[0]}): none applied; give --pack ${pack.manifest.name} --set KEY=VALUE`);
    return [];
  }
  o.say(`applying the bundled ${pack.manifest.name} pack ${pack.manifest.version} to "${o.upstream}" (${pack.manifest.description.split('. ')[0]}); --no-pack runs without it`);
  return [chosen];
}

function withPackage(command: string, args: readonly string[]): Pick<LaunchedServer, 'package'> {
  const found = launchedPackage(command, args);
  return found ? { package: found } : {};
}
