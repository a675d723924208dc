import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { digestOf } from '../protocol/digest.ts';
import { loadYamlFile, parseYamlText, validateYaml, type LoadedYaml } from '../config/yaml-file.ts';
import { invalid, problemsIn, type Problem } from '../config/problems.ts';
import { policyFileV1Schema, policyFileV2Schema, type PolicyRule, type ToolOverride } from './policy-schema.ts';
import { stricterEffect, type Effect } from './effect.ts';
import { mergeToolOverrides } from './tool-overrides.ts';

export interface PolicySource {
  file: string;
  version: 1 | 2;
  /** Overlays (what packs add) may not set the default; otherwise they merge like base files. */
  kind: 'base' | 'overlay';
  name?: string;
  rules: PolicyRule[];
  default?: Effect;
  /** Annotation and risk-tag overrides, by exact namespaced tool name or glob. */
  tools: Record<string, ToolOverride>;
  /**
   * The line of the id of the rule at this index of `rules`, to point at both copies of a duplicate. Looked up only
   * for a problem: a walk of the YAML document per rule would cost a 10,000-rule bundle tens of milliseconds.
   */
  ruleLine?: (index: number) => number | undefined;
  /** How the bundle's file list names it (a pack's file: `filesystem@1.0.0/policies/x.yaml`); the file's name otherwise. */
  label?: string;
}

/** The merged policy: what decisions are made from, and what the snapshot hash covers. */
export interface PolicyBundle {
  default: Effect;
  /** Sorted by id. */
  rules: PolicyRule[];
  /** Overrides by tool pattern, merged to the most restrictive where files overlap. */
  tools: Record<string, ToolOverride>;
  /** sha256 of the canonical bundle: stamped on every decision, so any decision can be reproduced. */
  snapshot: string;
  files: string[];
  /** The packs whose overlays the bundle holds (see src/packs/); their digests are part of the snapshot. */
  packs?: PackStamp[];
  /**
   * The tool digests the packs' tools.yaml pin, by upstream and the upstream's own tool name, with who pinned them
   * (`pack:<name>@<version>`): a first-seen definition is held to these (src/call/tool-pins.ts). Not decided on, so
   * not in the snapshot (the pack's digest, which is, covers them).
   */
  toolPins?: Record<string, Record<string, { digest: string; by: string }>>;
}

/** What a bundle records of one installed pack: enough to name the exact pack contents behind a decision. */
export interface PackStamp {
  name: string;
  version: string;
  /** sha256 of the pack's canonical contents. */
  digest: string;
  /** The upstream its rules and tool facts apply to. */
  upstream: string;
}

const INVALID = 'GH_ERR_POLICY_INVALID';

/**
 * Loads policy files and directories (a directory stands for its *.yaml / *.yml files, sorted, except *_test.yaml).
 * Every mistake of every file (a missing file, broken YAML, invalid rules, a rule id defined twice) is reported at
 * once, in one GH_ERR_POLICY_INVALID whose `data.problems` hold each one's file, line and key path.
 */
export function loadPolicyFiles(paths: readonly string[]): PolicyBundle {
  const { sources, problems } = readPolicySources(paths);
  problems.push(...duplicateRuleIds(sources));
  if (problems.length > 0) throw invalid(INVALID, problems);
  return mergePolicySources(sources);
}

/** The parsed files that paths name, and the problems of those that do not parse (to report with others'). */
export function readPolicySources(paths: readonly string[]): { sources: PolicySource[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const sources: PolicySource[] = [];
  for (const file of policyFilesIn(paths)) {
    try {
      sources.push(parsePolicy(loadYamlFile(file, INVALID)));
    } catch (err) {
      problems.push(...problemsIn(err, INVALID));
    }
  }
  return { sources, problems };
}

/** A bundle of one policy file given as text (a draft typed into the console), checked as `loadPolicyFiles` checks a file. */
export function bundleFromText(file: string, text: string): PolicyBundle {
  return mergePolicySources([parsePolicy(parseYamlText(file, text, INVALID))]);
}

/** The policy files that paths name: files as given, directories expanded (not recursively). */
export function policyFilesIn(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    let isDirectory = false;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      // A missing file is reported, with its name, when it is read.
    }
    if (!isDirectory) files.push(path);
    else {
      const entries = readdirSync(path).filter((name) => /\.ya?ml$/.test(name) && !/_test\.ya?ml$/.test(name));
      files.push(...entries.sort().map((name) => join(path, name)));
    }
  }
  return [...new Set(files)];
}

const versionSchema = z.looseObject({ version: z.literal([1, 2], 'expected version: 1 or 2') });

export function parsePolicy(loaded: LoadedYaml): PolicySource {
  const { version } = validateYaml(loaded, versionSchema, INVALID);
  if (version === 1) {
    const parsed = validateYaml(loaded, policyFileV1Schema, INVALID);
    return { file: loaded.file, version, kind: 'base', rules: parsed.rules, default: parsed.default, tools: {}, ruleLine: ruleLineIn(loaded) };
  }
  const parsed = validateYaml(loaded, policyFileV2Schema, INVALID);
  return { file: loaded.file, version, kind: parsed.kind, name: parsed.name, rules: parsed.rules, default: parsed.default, tools: parsed.tools, ruleLine: ruleLineIn(loaded) };
}

const ruleLineIn = (loaded: LoadedYaml) => (index: number) => loaded.lineOf(['rules', index, 'id']);

/** Rule ids are unique across the bundle: every copy of a duplicate is a problem, naming all its places. */
export function duplicateRuleIds(sources: readonly PolicySource[]): Problem[] {
  // Ids seen twice are found first: only their copies are placed (a line lookup each), not every rule's.
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const source of sources) for (const rule of source.rules) (seen.has(rule.id) ? twice : seen).add(rule.id);
  if (twice.size === 0) return [];
  const places = new Map<string, Problem[]>();
  for (const source of sources) {
    source.rules.forEach((rule, i) => {
      if (!twice.has(rule.id)) return;
      const place: Problem = { file: source.file, line: source.ruleLine?.(i), path: ['rules', i, 'id'], message: '' };
      places.set(rule.id, [...(places.get(rule.id) ?? []), place]);
    });
  }
  return [...places].flatMap(([id, copies]) => {
    if (copies.length < 2) return [];
    const files = [...new Set(copies.map((c) => c.file))];
    const where = copies.map((c) => `${c.file}${c.line ? `:${c.line}` : ''}`).join(' and ');
    const defined = files.length === 2 && copies.length === 2 ? `in both ${files[0]} and ${files[1]}` : `${copies.length} times`;
    return copies.map((copy) => ({ ...copy, message: `rule id "${id}" is defined ${defined} (${where}); rule ids are unique across the bundle` }));
  });
}

/**
 * Merges policy files into one bundle. Rule ids are unique across files; the default is the strictest any file
 * sets (`deny` when none does); tool overrides merge to the most restrictive. Rules are sorted by id and
 * overrides keyed by pattern before hashing, so the order of files (base or overlay) never changes the snapshot.
 * The packs' stamps are hashed too (sorted), so a decision's snapshot names the exact packs that made it; a bundle
 * without packs hashes as it always did.
 */
export function mergePolicySources(sources: readonly PolicySource[], packs: readonly PackStamp[] = []): PolicyBundle {
  const rules: PolicyRule[] = [];
  const tools = new Map<string, ToolOverride>();
  let defaultEffect: Effect | undefined;
  const duplicates = duplicateRuleIds(sources);
  if (duplicates.length > 0) throw invalid(INVALID, duplicates);
  for (const source of sources) {
    rules.push(...source.rules);
    for (const [pattern, override] of Object.entries(source.tools)) {
      const known = tools.get(pattern);
      tools.set(pattern, known ? mergeToolOverrides(known, override) : mergeToolOverrides({}, override));
    }
    if (source.default) defaultEffect = defaultEffect ? stricterEffect(defaultEffect, source.default) : source.default;
  }
  rules.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const effective = defaultEffect ?? 'deny';
  const overrides = Object.fromEntries([...tools].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const stamps = [...packs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.upstream < b.upstream ? -1 : 1));
  return {
    default: effective,
    rules,
    tools: overrides,
    snapshot: digestOf({ version: 2, default: effective, tools: overrides, rules, ...(stamps.length > 0 ? { packs: stamps } : {}) }),
    files: sources.map((s) => s.label ?? basename(s.file)),
    ...(stamps.length > 0 ? { packs: stamps } : {}),
  };
}
