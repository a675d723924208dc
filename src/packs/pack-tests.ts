import { Kernel } from '../kernel/kernel.ts';
import { loadTestFile, runPolicyTests, type TestReport } from '../kernel/authoring/test-runner.ts';
import type { Pack } from './pack.ts';
import { loadPolicyBundle } from './policy-bundle.ts';

/**
 * A pack's own tests (tests/*_test.yaml), on the pack alone installed with its `testParams` for its default
 * upstream: the verdict function the gateway decides with, the tool facts tools.yaml gives.
 */
export function runPackTests(pack: Pack): { report: TestReport; files: string[]; snapshot: string } {
  const bundle = loadPolicyBundle([], [{ name: pack.dir, params: pack.manifest.testParams }], { search: [] });
  const kernel = new Kernel(bundle);
  return { report: runPolicyTests(kernel, pack.testFiles.flatMap(loadTestFile)), files: pack.testFiles, snapshot: bundle.snapshot };
}
