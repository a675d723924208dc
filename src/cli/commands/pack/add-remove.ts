import { cpSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readInstalled, writeInstalled } from '../../../packs/installed.ts';
import { loadPolicyBundle } from '../../../packs/policy-bundle.ts';
import { parseSetting } from '../../../packs/params.ts';
import { checkTools } from '../../../packs/tool-check.ts';
import { fitInWords, matchesInitialised, type InitialisedServer } from '../../../packs/match.ts';
import { loadPack, type Pack } from '../../../packs/pack.ts';
import type { PackInstall } from '../../../packs/install.ts';
import { readRecordedCatalog } from '../../../kernel/authoring/recorded-catalog.ts';
import { flag, parseArgs, usage } from '../../args.ts';
import { DEPLOYMENT_FLAGS, namedPack, packDeployment, type PackDeployment } from './deployment.ts';
import { takeSettings } from './settings.ts';

/**
 * Adds a pack to the data dir's installs (a pack folder is copied into `<dataDir>/packs/` first: a pack is data, and
 * the deployment keeps what it decides with). The whole policy is validated with it before anything is written; a
 * running gateway then reloads as it does for a policy edit. The pack is checked against the tools the gateway last
 * recorded for its upstream: tools it does not know and pinned definitions that differ are warnings.
 */
export async function runAdd(argv: string[]): Promise<number> {
  const taken = takeSettings(argv);
  const args = parseArgs(taken.argv, { values: [...DEPLOYMENT_FLAGS, 'upstream'] });
  if (args.positionals.length !== 1) throw usage('name one pack, or give one pack folder');
  const deployment = packDeployment(args, true);
  const [name] = args.positionals;
  let pack = namedPack(name, deployment.places);
  if (name.includes('/')) pack = copyIntoDataDir(pack, deployment.dataDir);
  const params = Object.fromEntries(taken.settings.map(([key, text]) => [key, parseSetting(pack.manifest.params[key], text)]));
  const upstream = flag(args, 'upstream') ?? pack.manifest.upstream.name;
  const install: PackInstall = { name: pack.manifest.name, ...(upstream !== pack.manifest.upstream.name ? { upstream } : {}), params };
  const others = readInstalled(deployment.dataDir).filter((i) => !(i.name === install.name && (i.upstream ?? pack.manifest.upstream.name) === upstream));
  const installs = [...others.map(({ origin: _origin, ...i }) => i), install];
  const bundle = loadPolicyBundle(deployment.policies, [...deployment.configPacks, ...installs], deployment.places);
  mkdirSync(deployment.dataDir, { recursive: true });
  writeInstalled(deployment.dataDir, installs);
  console.log(`added ${pack.manifest.name} ${pack.manifest.version} for upstream "${upstream}" (${pack.digest}); the policy is now ${bundle.snapshot}`);
  warnAboutTools(pack, upstream, deployment);
  return 0;
}

function copyIntoDataDir(pack: Pack, dataDir: string): Pack {
  const target = join(dataDir, 'packs', pack.manifest.name);
  if (resolve(pack.dir) === resolve(target)) return pack;
  mkdirSync(join(dataDir, 'packs'), { recursive: true });
  cpSync(pack.dir, target, { recursive: true, force: true, filter: (src) => !/(^|\/)\.[^/]+$/.test(src.slice(pack.dir.length)) });
  return loadPack(target);
}

function warnAboutTools(pack: Pack, upstream: string, deployment: PackDeployment): void {
  const catalog = readRecordedCatalog(deployment.dataDir);
  const prefix = `${upstream}__`;
  const listed = Object.fromEntries(Object.entries(catalog?.tools ?? {}).filter(([id, t]) => t.server === upstream && id.startsWith(prefix)).map(([id, t]) => [id.slice(prefix.length), t.digest]));
  if (Object.keys(listed).length === 0) {
    console.error(`note: no tools of "${upstream}" recorded in ${deployment.dataDir} yet; start the gateway, then \`gatehouse pack add\` again to check the pack against the server's real tools`);
    return;
  }
  warnAboutMatch(pack, upstream, { ...(catalog?.servers[upstream] ? { serverName: catalog.servers[upstream].name } : {}), tools: Object.keys(listed) });
  const { unknown, changed, missing } = checkTools(pack, listed);
  for (const tool of unknown) console.error(`warning: ${upstream} lists ${tool}, which the ${pack.manifest.name} pack does not know: only the deployment's own rules and facts apply to it`);
  for (const tool of changed) console.error(`warning: ${upstream}'s ${tool} is not the definition the pack pinned (${pack.tools.server.version}): check its facts in tools.yaml`);
  if (missing.length > 0) console.error(`note: ${upstream} does not list ${missing.join(', ')} (the pack was written for ${pack.tools.server.version})`);
}

/** Whether the upstream, as it last ran, is a server the pack's match names (by serverInfo name or tool set). */
function warnAboutMatch(pack: Pack, upstream: string, running: InitialisedServer): void {
  if (!matchesInitialised(pack)) return;
  const fit = fitInWords(pack, running);
  const { serverNames, tools } = pack.manifest.match;
  if (fit) {
    console.error(`note: "${upstream}" is a server the ${pack.manifest.name} pack is for (by ${fit})`);
    return;
  }
  const expects = [...(serverNames.length ? [`the serverInfo name ${serverNames.join(' or ')}`] : []), ...(tools.length ? [`the tools ${tools.join(', ')}`] : [])].join(' or ');
  const itself = running.serverName === undefined ? 'it gave no serverInfo name' : `it calls itself ${running.serverName}`;
  console.error(`warning: "${upstream}" is not recognised as the server the ${pack.manifest.name} pack is for (${itself}; the pack expects ${expects}): its rules apply to it all the same`);
}

/** Removes a pack's installs from the data dir (all of them, or the one for `--upstream`); the gateway reloads. */
export async function runRemove(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...DEPLOYMENT_FLAGS, 'upstream'] });
  if (args.positionals.length !== 1) throw usage('name one pack');
  const [name] = args.positionals;
  const deployment = packDeployment(args, true);
  const upstream = flag(args, 'upstream');
  const installed = readInstalled(deployment.dataDir).map(({ origin: _origin, ...i }) => i);
  const removing = (i: PackInstall) => i.name === name && (upstream === undefined || (i.upstream ?? name) === upstream || i.upstream === upstream);
  const kept = installed.filter((i) => !removing(i));
  if (kept.length === installed.length) {
    const inConfig = deployment.configPacks.some((i) => i.name === name);
    console.error(`gatehouse pack remove: ${name} is not among the packs added to ${deployment.dataDir}${inConfig ? `; it is in the packs: of ${deployment.configFile}: remove it there` : ''}`);
    return 1;
  }
  const bundle = loadPolicyBundle(deployment.policies, [...deployment.configPacks, ...kept], deployment.places);
  writeInstalled(deployment.dataDir, kept);
  console.log(`removed ${name}${upstream ? ` for upstream "${upstream}"` : ''}; the policy is now ${bundle.snapshot}`);
  return 0;
}
