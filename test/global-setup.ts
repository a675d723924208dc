import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * The tests run the CLI as it ships: bin/gatehouse.js runs the bundle in dist/. So every test run builds it first
 * (a few seconds), and a test never meets a build older than the source.
 */
export default function build(): void {
  const run = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`npm run build failed:\n${run.stdout}${run.stderr}`);
}
