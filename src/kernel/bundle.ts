import { basename } from 'node:path';
import { digestOf } from '../protocol/digest.ts';
import { GatewayError } from '../errors.ts';
import { loadYamlFile, validateYaml, type LoadedYaml } from '../config/yaml-file.ts';
import { policyFileSchema, type PolicyRule } from './policy-schema.ts';
import { stricterEffect, type Effect } from './effect.ts';

export interface PolicySource {
  file: string;
  rules: PolicyRule[];
  default?: Effect;
}

/** The merged policy: what decisions are made from, and what the snapshot hash covers. */
export interface PolicyBundle {
  default: Effect;
  rules: PolicyRule[];
  /** sha256 of the canonical bundle: stamped on every decision, so any decision can be reproduced. */
  snapshot: string;
  files: string[];
}

export function loadPolicyFiles(files: readonly string[]): PolicyBundle {
  return mergePolicySources(files.map((file) => parsePolicy(loadYamlFile(file, 'GH_ERR_POLICY_INVALID'))));
}

export function parsePolicy(loaded: LoadedYaml): PolicySource {
  const parsed = validateYaml(loaded, policyFileSchema, 'GH_ERR_POLICY_INVALID');
  return { file: loaded.file, rules: parsed.rules, default: parsed.default };
}

/**
 * Merges policy files into one bundle. Rule ids are unique across files; the default is the strictest any file
 * sets (`deny` when none does). Rules are sorted by id before hashing, so file order never changes the snapshot.
 */
export function mergePolicySources(sources: readonly PolicySource[]): PolicyBundle {
  const owner = new Map<string, string>();
  const rules: PolicyRule[] = [];
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
    if (source.default) defaultEffect = defaultEffect ? stricterEffect(defaultEffect, source.default) : source.default;
  }
  rules.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const effective = defaultEffect ?? 'deny';
  return {
    default: effective,
    rules,
    snapshot: digestOf({ version: 1, default: effective, rules }),
    files: sources.map((s) => basename(s.file)),
  };
}
