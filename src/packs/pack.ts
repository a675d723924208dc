import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { digestOf, sha256Hex } from '../protocol/digest.ts';
import { GATEHOUSE_VERSION } from '../protocol/version.ts';
import { invalid, problemsIn, type Problem } from '../config/problems.ts';
import { checkYaml, loadYamlFile, type LoadedYaml } from '../config/yaml-file.ts';
import { packManifestSchema, packToolsSchema, type PackManifest, type PackTools } from './pack-schema.ts';
import { satisfies } from './version-range.ts';

const INVALID = 'GH_ERR_POLICY_INVALID';

/** A pack as read from its folder: data only; nothing in it is ever run. */
export interface Pack {
  dir: string;
  manifest: PackManifest;
  /** pack.yaml as loaded, for the lines of its parameters. */
  manifestYaml: LoadedYaml;
  tools: PackTools;
  /** `policies/*.yaml`, sorted. */
  policyFiles: string[];
  /** `tests/*_test.yaml`, sorted. */
  testFiles: string[];
  /** sha256 of the canonical contents: every file's path and sha256, sorted by path. */
  digest: string;
}

/**
 * Reads a pack folder: pack.yaml, tools.yaml, the names of its policy and test files, and its digest. Every problem
 * of pack.yaml and tools.yaml (syntax, unknown keys, wrong values, a `requires` this version does not meet) is
 * reported at once with file and line, as GH_ERR_POLICY_INVALID (a pack is part of the policy bundle).
 */
export function loadPack(dir: string, gatehouseVersion = GATEHOUSE_VERSION): Pack {
  const problems: Problem[] = [];
  const read = <T>(file: string, check: (loaded: LoadedYaml) => { data: T } | { problems: Problem[] }): { loaded: LoadedYaml; data: T } | undefined => {
    try {
      const loaded = loadYamlFile(join(dir, file), INVALID);
      const checked = check(loaded);
      if ('problems' in checked) problems.push(...checked.problems);
      else return { loaded, data: checked.data };
    } catch (err) {
      problems.push(...problemsIn(err, INVALID));
    }
    return undefined;
  };
  const manifest = read('pack.yaml', (l) => checkYaml(l, packManifestSchema));
  const tools = read('tools.yaml', (l) => checkYaml(l, packToolsSchema));
  if (manifest?.data.requires !== undefined) {
    const ok = satisfies(gatehouseVersion, manifest.data.requires);
    const line = manifest.loaded.lineOf(['requires']);
    if (ok === undefined) problems.push({ file: manifest.loaded.file, line, path: ['requires'], message: `"${manifest.data.requires}" is not a version range this Gatehouse reads (>=1.0.0 <2.0.0, ^1.2.0, ~1.2.0, 1.x, joined by ||)` });
    else if (!ok) problems.push({ file: manifest.loaded.file, line, path: ['requires'], message: `the pack requires Gatehouse ${manifest.data.requires}; this is Gatehouse ${gatehouseVersion}` });
  }
  if (problems.length > 0 || !manifest || !tools) throw invalid(INVALID, problems);
  return {
    dir,
    manifest: manifest.data,
    manifestYaml: manifest.loaded,
    tools: tools.data,
    policyFiles: yamlFilesIn(join(dir, 'policies')).filter((f) => !/_test\.ya?ml$/.test(f)),
    testFiles: yamlFilesIn(join(dir, 'tests')).filter((f) => /_test\.ya?ml$/.test(f)),
    digest: packDigest(dir),
  };
}

function yamlFilesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(dir, name));
}

/** The digest of a pack folder's files (dot files aside), independent of where the folder is and of file times. */
export function packDigest(dir: string): string {
  const files: Record<string, string> = {};
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder).sort()) {
      if (name.startsWith('.')) continue;
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else files[relative(dir, path).split('\\').join('/')] = sha256Hex(readFileSync(path));
    }
  };
  walk(dir);
  return digestOf(files);
}
