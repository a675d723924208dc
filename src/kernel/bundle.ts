import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { digestOf } from '../protocol/digest.ts';
import { GatewayError } from '../errors.ts';
import { loadYamlFile, validateYaml, type LoadedYaml } from '../config/yaml-file.ts';
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
}

/** Loads policy files and directories (a directory stands for its *.yaml / *.yml files, sorted, except *_test.yaml). */
export function loadPolicyFiles(paths: readonly string[]): PolicyBundle {
  return mergePolicySources(policyFilesIn(paths).map((file) => parsePolicy(loadYamlFile(file, 'GH_ERR_POLICY_INVALID'))));
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
  const { version } = validateYaml(loaded, versionSchema, 'GH_ERR_POLICY_INVALID');
  if (version === 1) {
    const parsed = validateYaml(loaded, policyFileV1Schema, 'GH_ERR_POLICY_INVALID');
    return { file: loaded.file, version, kind: 'base', rules: parsed.rules, default: parsed.default, tools: {} };
  }
  const parsed = validateYaml(loaded, policyFileV2Schema, 'GH_ERR_POLICY_INVALID');
  return { file: loaded.file, version, kind: parsed.kind, name: parsed.name, rules: parsed.rules, default: parsed.default, tools: parsed.tools };
}

/**
 * Merges policy files into one bundle. Rule ids are unique across files; the default is the strictest any file
 * sets (`deny` when none does); tool overrides merge to the most restrictive. Rules are sorted by id and
 * overrides keyed by pattern before hashing, so the order of files (base or overlay) never changes the snapshot.
 */
export function mergePolicySources(sources: readonly PolicySource[]): PolicyBundle {
  const owner = new Map<string, string>();
  const rules: PolicyRule[] = [];
  const tools = new Map<string, ToolOverride>();
  let defaultEffect: Effect | undefined;
  for (const source of sources) {
    for (const rule of source.rules) {
      const previous = owner.get(rule.id);
      if (previous) {
        throw new GatewayError('GH_ERR_POLICY_INVALID', `rule id "${rule.id}" is defined in both ${previous} and ${source.file}`, {
          data: { ruleId: rule.id, files: [previous, source.file] },
        });
      }
      owner.set(rule.id, source.file);
      rules.push(rule);
    }
    for (const [pattern, override] of Object.entries(source.tools)) {
      const known = tools.get(pattern);
      tools.set(pattern, known ? mergeToolOverrides(known, override) : mergeToolOverrides({}, override));
    }
    if (source.default) defaultEffect = defaultEffect ? stricterEffect(defaultEffect, source.default) : source.default;
  }
  rules.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const effective = defaultEffect ?? 'deny';
  const overrides = Object.fromEntries([...tools].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    default: effective,
    rules,
    tools: overrides,
    snapshot: digestOf({ version: 2, default: effective, tools: overrides, rules }),
    files: sources.map((s) => basename(s.file)),
  };
}
