import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadPolicyFiles, type PolicyBundle } from '../kernel/bundle.ts';

const YAML = /\.ya?ml$/;
const TEST = /_test\.ya?ml$/;

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // a missing path is reported by whoever reads it, with its own message
  }
};

const yamlFilesIn = (dir: string, test: boolean): string[] =>
  readdirSync(dir)
    .filter((name) => YAML.test(name) && TEST.test(name) === test)
    .sort()
    .map((name) => join(dir, name));

/** The policy tests of a folder (its `*_test.yaml` files), or the one test file named. */
export const testFilesAt = (path: string): string[] => (isDirectory(path) ? yamlFilesIn(resolve(path), true) : [resolve(path)]);

/** Loads a bundle from files and folders; a folder contributes its `*.yaml`/`*.yml` files except the `*_test.yaml`. */
export function loadPolicyPaths(paths: readonly string[]): PolicyBundle {
  return loadPolicyFiles(paths.flatMap((p) => (isDirectory(p) ? yamlFilesIn(resolve(p), false) : [resolve(p)])));
}
