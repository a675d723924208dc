import { invalid, problemsIn } from '../config/problems.ts';
import { duplicateRuleIds, mergePolicySources, readPolicySources, type PackStamp, type PolicyBundle } from '../kernel/bundle.ts';
import { installPack, type PackInstall } from './install.ts';
import { loadPack } from './pack.ts';
import { findPack, type PackPlaces } from './places.ts';

const INVALID = 'GH_ERR_POLICY_INVALID';

/** Where an install was written (a data dir's packs.yaml entry), for its problems' file and line. */
export type LocatedInstall = PackInstall & { origin?: { file: string; line?: number } };

/**
 * The policy bundle of a deployment: its policy files and every installed pack, validated whole. Every problem of
 * any file or pack (an unknown pack, bad pack files, a wrong or missing parameter, a rule id two sources define) is
 * reported at once in one GH_ERR_POLICY_INVALID, so a reload that meets one keeps the running bundle.
 */
export function loadPolicyBundle(paths: readonly string[], installs: readonly LocatedInstall[], places: PackPlaces): PolicyBundle {
  const { sources, problems } = readPolicySources(paths);
  const stamps: PackStamp[] = [];
  const toolPins: NonNullable<PolicyBundle['toolPins']> = {};
  installs.forEach((install, i) => {
    const where = install.origin ?? { file: 'config' };
    const describe = `the install of ${install.name}${install.origin ? '' : ` (config packs[${i}])`}`;
    const dir = findPack(install.name, places);
    if (!dir) {
      problems.push({ file: where.file, line: where.line, path: install.origin ? [] : ['packs', i, 'name'], message: `there is no pack "${install.name}" (looked in ${places.search.join(', ')})` });
      return;
    }
    try {
      const pack = loadPack(dir);
      const result = installPack(pack, install, describe);
      problems.push(...result.problems);
      if (result.installed) {
        const { stamp } = result.installed;
        sources.push(...result.installed.sources);
        stamps.push(stamp);
        const by = `pack:${stamp.name}@${stamp.version}`;
        toolPins[stamp.upstream] = { ...toolPins[stamp.upstream], ...Object.fromEntries(Object.entries(pack.tools.tools).flatMap(([tool, t]) => (t.machineDependent ? [] : [[tool, { digest: t.digest, by }]]))) };
      }
    } catch (err) {
      problems.push(...problemsIn(err, INVALID));
    }
  });
  problems.push(...duplicateRuleIds(sources));
  if (problems.length > 0) throw invalid(INVALID, problems);
  const bundle = mergePolicySources(sources, stamps);
  return stamps.length > 0 ? { ...bundle, toolPins } : bundle;
}
