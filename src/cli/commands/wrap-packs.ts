import { packPlaces } from '../../packs/places.ts';
import type { Pack } from '../../packs/pack.ts';
import { fitInWords, initialisedFit, packFits, paramsFromCommand, type InitialisedServer, type LaunchedServer } from '../../packs/match.ts';
import { parseSetting } from '../../packs/params.ts';
import { readInstalled } from '../../packs/installed.ts';
import { loadPolicyBundle } from '../../packs/policy-bundle.ts';
import type { PackInstall } from '../../packs/install.ts';
import { isGatewayError } from '../../errors.ts';
import { usage } from '../args.ts';
import { namedPack } from './pack/deployment.ts';
import { bundledPacks, launchedServer } from './pack/fitting.ts';

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

/** What wrap applies before the server starts, and whether to look again once it has said who it is. */
export interface WrapPackChoice {
  installs: PackInstall[];
  /** No pack was named or refused, none is installed for it, and no bundled pack fits its command. */
  lookOnceRunning: boolean;
}

/**
 * The pack `wrap` applies to its server: the one --pack names, with the parameters the server's command states and
 * --set gives; else the one bundled pack whose match fits the command, if it installs with what the command states
 * (said on stderr either way); none with --no-pack, or when the data dir already installs a pack for this upstream.
 */
export function wrapPacks(o: WrapPackOptions): WrapPackChoice {
  if (o.none) return { installs: [], lookOnceRunning: false };
  const places = packPlaces(o.dataDir);
  const server = launched(o);
  if (o.pack) return { installs: [install(namedPack(o.pack, places), o, server)], lookOnceRunning: false };
  if (o.settings.length > 0) throw usage('--set gives a parameter of the pack that --pack names');
  if (readInstalled(o.dataDir).length > 0) return { installs: [], lookOnceRunning: false };
  const fits = bundledPacks().filter((pack) => packFits(pack, server));
  return { installs: chooseOne(fits, o, 'its command'), lookOnceRunning: fits.length === 0 };
}

/**
 * Once the server has answered initialize and tools/list (when its command fitted no pack): the one bundled pack
 * whose match names its serverInfo name or whose match.tools it all lists, if it installs as the server was started.
 */
export function wrapPacksOnceRunning(o: WrapPackOptions, running: InitialisedServer): PackInstall[] {
  const fits = bundledPacks().filter((pack) => initialisedFit(pack, running) !== undefined);
  return chooseOne(fits, o, (fits.length === 1 && fitInWords(fits[0], running)) || 'what it says of itself');
}

const launched = (o: WrapPackOptions): LaunchedServer => launchedServer(o.command, o.args);

function install(pack: Pack, o: WrapPackOptions, server: LaunchedServer): PackInstall {
  return {
    name: pack.dir,
    upstream: o.upstream,
    params: { ...paramsFromCommand(pack, server, process.cwd()), ...Object.fromEntries(o.settings.map(([k, v]) => [k, parseSetting(pack.manifest.params[k], v)])) },
  };
}

/**
 * The one pack that fits (by what `by` says), validated as it would be applied; none (said on stderr) when several
 * fit or it cannot apply.
 */
function chooseOne(fits: Pack[], o: WrapPackOptions, by: string): PackInstall[] {
  if (fits.length > 1) o.say(`several bundled packs fit this server by ${by} (${fits.map((p) => p.manifest.name).join(', ')}): none applied; choose one with --pack NAME`);
  if (fits.length !== 1) return [];
  const [pack] = fits;
  const chosen = install(pack, o, launched(o));
  try {
    loadPolicyBundle([], [chosen], packPlaces(o.dataDir));
  } catch (err) {
    if (!isGatewayError(err, 'GH_ERR_POLICY_INVALID')) throw err;
    o.say(`the bundled ${pack.manifest.name} pack fits this server by ${by} but cannot be applied as it is started (${err.message.split('\n')[0]}): none applied; give --pack ${pack.manifest.name} --set KEY=VALUE`);
    return [];
  }
  o.say(`applying the bundled ${pack.manifest.name} pack ${pack.manifest.version} to "${o.upstream}", which fits by ${by} (${pack.manifest.description.split('. ')[0]}); --no-pack runs without it`);
  return [chosen];
}
