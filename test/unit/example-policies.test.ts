import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Kernel } from '../../src/kernel/kernel.ts';
import { loadPolicyFiles } from '../../src/kernel/bundle.ts';
import { loadTestFile, runPolicyTests, testFilesAt } from '../../src/kernel/authoring/test-runner.ts';
import { ROOT } from '../helpers/gateway-harness.ts';

const EXAMPLES = join(ROOT, 'examples/policies');
const folders = [join(ROOT, 'policies'), ...readdirSync(EXAMPLES, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(EXAMPLES, e.name))];

/** The shipped policies and the README's examples pass their own tests, with every rule covered both ways. */
describe.each(folders)('policy tests of %s', (folder) => {
  it('pass with full rule coverage', () => {
    const cases = testFilesAt(folder).flatMap(loadTestFile);
    expect(cases.length).toBeGreaterThan(0);
    const report = runPolicyTests(new Kernel(loadPolicyFiles([folder])), cases);
    expect(report.results.filter((r) => !r.passed).map((r) => r.case.name)).toEqual([]);
    expect(report.gaps.map((g) => g.id)).toEqual([]);
  });
});
