import { basename } from 'node:path';
import { problemsIn, type Problem } from '../config/problems.ts';
import { loadYamlFile } from '../config/yaml-file.ts';
import { parsePolicy, type PackStamp, type PolicySource } from '../kernel/bundle.ts';
import { compileGlob } from '../kernel/glob.ts';
import type { PolicyRule } from '../kernel/policy-schema.ts';
import type { ToolOverride } from '../kernel/policy-schema.ts';
import type { Pack } from './pack.ts';
import type { ArgRoles } from './pack-schema.ts';
import { resolveParams, substituteParams, type ParamValue } from './params.ts';

const INVALID = 'GH_ERR_POLICY_INVALID';

/** One pack as a config (or the data dir) installs it. */
export interface PackInstall {
  /** A bundled pack's name, or a pack folder's path. */
  name: string;
  /** The upstream it governs; the pack's `upstream.name` otherwise. */
  upstream?: string;
  params: Record<string, unknown>;
}

export interface InstalledPack {
  stamp: PackStamp;
  params: Record<string, ParamValue>;
  /** The pack's overlays, and its tool facts as one more overlay, ready to merge with the deployment's files. */
  sources: PolicySource[];
}

/**
 * A pack made into policy for one upstream: parameters checked and filled in, each overlay parsed as any policy
 * file is, its rules scoped to the upstream (`match.servers` set, tool and prompt names prefixed `<upstream>__`),
 * path and URL constraints pointed at the arguments tools.yaml names, and tools.yaml's annotations and risk tags
 * made the bundle's overrides of the upstream's tools. Every problem is reported at once, with file and line.
 */
export function installPack(pack: Pack, install: PackInstall, describe: string): { installed?: InstalledPack; problems: Problem[] } {
  const { manifest } = pack;
  const upstream = install.upstream ?? manifest.upstream.name;
  const { values, problems } = resolveParams(pack.manifestYaml, manifest.params, install.params, describe);
  if (problems.length > 0) return { problems };
  const label = (file: string) => `${manifest.name}@${manifest.version}/${file}`;
  const sources: PolicySource[] = [];
  for (const file of pack.policyFiles) {
    try {
      const loaded = loadYamlFile(file, INVALID);
      const substituted = substituteParams(loaded, values);
      if (substituted.problems.length > 0) {
        problems.push(...substituted.problems);
        continue;
      }
      const source = parsePolicy({ ...loaded, value: substituted.value });
      problems.push(...packRuleProblems(source, manifest.name, loaded.lineOf));
      sources.push({ ...source, rules: source.rules.map((rule) => scopeRule(rule, upstream, pack.tools.tools)), label: label(`policies/${basename(file)}`) });
    } catch (err) {
      problems.push(...problemsIn(err, INVALID));
    }
  }
  if (problems.length > 0) return { problems };
  const tools: Record<string, ToolOverride> = {};
  for (const [name, entry] of Object.entries(pack.tools.tools)) {
    tools[`${upstream}__${name}`] = { ...(entry.annotations ? { annotations: entry.annotations } : {}), ...(entry.riskTags.length > 0 ? { riskTags: entry.riskTags } : {}) };
  }
  sources.push({ file: `${pack.dir}/tools.yaml`, version: 2, kind: 'overlay', rules: [], tools, label: label('tools.yaml') });
  return { installed: { stamp: { name: manifest.name, version: manifest.version, digest: pack.digest, upstream }, params: values, sources }, problems };
}

/** A pack's policy files are overlays whose rule ids start with `<pack>/` and whose rules name no upstream. */
function packRuleProblems(source: PolicySource, pack: string, lineOf: (path: readonly PropertyKey[]) => number | undefined): Problem[] {
  const problems: Problem[] = [];
  if (source.kind !== 'overlay') problems.push({ file: source.file, line: lineOf(['kind']), path: ['kind'], message: 'a pack adds overlays: write kind: overlay (the deployment\'s base files set the default)' });
  source.rules.forEach((rule, i) => {
    if (!rule.id.startsWith(`${pack}/`)) problems.push({ file: source.file, line: source.ruleLine?.(i), path: ['rules', i, 'id'], message: `rule ids of the ${pack} pack start with "${pack}/" (so they never clash with the deployment's or another pack's): "${pack}/${rule.id}"` });
    if (rule.match.servers) problems.push({ file: source.file, line: lineOf(['rules', i, 'match', 'servers']), path: ['rules', i, 'match', 'servers'], message: 'a pack rule applies to the upstream the pack is installed for: leave servers out' });
  });
  return problems;
}

/** A pack rule as it applies to one upstream. */
function scopeRule(rule: PolicyRule, upstream: string, tools: Record<string, { args: ArgRoles }>): PolicyRule {
  const prefixed = (names: string[] | undefined) => names?.map((n) => `${upstream}__${n}`);
  const match = { ...rule.match, servers: [upstream], ...(rule.match.tools ? { tools: prefixed(rule.match.tools) } : {}), ...(rule.match.prompts ? { prompts: prefixed(rule.match.prompts) } : {}) };
  if (!rule.constraints?.paths && !rule.constraints?.egress) return { ...rule, match };
  // The arguments that hold paths (URLs) in the tools this rule is about, so the constraint looks exactly there.
  const globs = (rule.match.tools ?? ['*']).map(compileGlob);
  const covered = Object.entries(tools).filter(([name]) => globs.some((g) => g(name)));
  const argsOf = (role: 'paths' | 'urls') => [...new Set(covered.flatMap(([, t]) => t.args[role] ?? []))].sort();
  const fill = <E extends { args?: string[] }>(entries: E[] | undefined, role: 'paths' | 'urls'): E[] | undefined => {
    const args = argsOf(role);
    return entries?.map((e) => (e.args || args.length === 0 ? e : { ...e, args }));
  };
  const constraints = { ...rule.constraints };
  if (constraints.paths) constraints.paths = fill(constraints.paths, 'paths');
  if (constraints.egress) constraints.egress = fill(constraints.egress, 'urls');
  return { ...rule, match, constraints };
}
