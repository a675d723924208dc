import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { Kernel } from '../../../kernel/kernel.ts';
import { loadPolicyFiles } from '../../../kernel/bundle.ts';
import { loadTestFile, runPolicyTests, testFilesAt, type CaseResult, type TestReport } from '../../../kernel/authoring/test-runner.ts';
import { flag, parseArgs, usage } from '../../args.ts';
import { catalogFile, readRecordedCatalog, recordedFacts } from '../../../kernel/authoring/recorded-catalog.ts';
import { gatewayConfigFor } from './sources.ts';

export const TEST_HELP = `  gatehouse policy test [DIR|FILE] [--config FILE | --data-dir DIR] [--strict-coverage] [--json]
    Loads the bundle from DIR's policy files (default policies/) and runs every *_test.yaml in DIR (or the one
    test FILE, against the policies beside it) through the verdict function the live gateway decides with. A test
    file holds cases:
      cases:
        - name: reads are allowed
          call: { tool: fs__read_file, principal: alice, tenant: default, args: { path: /tmp/x },
                  annotations: { readOnlyHint: true }, riskTags: [], labels: {}, now: 2025-06-01T09:00:00Z }
          expect: { effect: allow, ruleIds: [read-only-tools] }
        - name: no write outside the workspace
          call: { tool: fs__write_file, args: { path: /etc/passwd } }
          expect: { effect: deny, code: GH_ERR_PATH_DENIED }
    tool is <server>__<tool>; principal defaults to "test", tenant to "default", args to {}. A call may state
    annotations, riskTags, labels, upstreamUrl (an HTTP upstream's URL, for egress) and session (the facts of the
    session's earlier calls: { calls, tools, riskTags, labels, startedAt, approvals, client }; left out, a session
    with no calls, starting now); with --config or --data-dir, the facts it
    does not state come from the catalog the gateway recorded (<dataDir>/catalog.json), as live. expect.effect is
    the verdict's: deny too when a constraint (paths, egress, maxArgBytes) refuses the arguments. expect.code, with
    effect deny, is why: GH_ERR_POLICY_DENIED, GH_ERR_PATH_DENIED, GH_ERR_EGRESS_DENIED, GH_ERR_ARGS_TOO_LARGE.
    expect.ruleIds, when given, must equal the decision's matching rules as a set. Each failure is printed with
    what was expected, what was decided and the deciding rules. Then rule coverage: every rule should match in at
    least one case and not match in another; the rules lacking either are listed.
    Exit 0 when every case passes (coverage gaps are warnings), 1 when a case fails.
    --config FILE       the gateway's config, for the tool facts recorded in its data dir
    --data-dir DIR      the tool facts recorded in DIR (for \`gatehouse wrap\`: ~/.gatehouse)
    --strict-coverage   coverage gaps fail too (exit 1)
    --json              print the results and the coverage as JSON`;

export async function runTest(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: ['config', 'data-dir'], booleans: ['strict-coverage', 'json'] });
  if (args.positionals.length > 1) throw usage('give one DIR (or one test FILE)');
  const target = args.positionals[0] ?? 'policies';
  if (!existsSync(target)) throw usage(`${target} does not exist`);
  const policyDir = statSync(target).isDirectory() ? target : dirname(target);
  const testFiles = testFilesAt(target);
  if (testFiles.length === 0) {
    console.error(`gatehouse policy test: no *_test.yaml files in ${target}`);
    return 1;
  }
  const kernel = new Kernel(loadPolicyFiles([policyDir]));
  const cases = testFiles.flatMap(loadTestFile);
  // Only when asked for: a test run does not change with whatever gateway last ran in this folder.
  const dataDir = flag(args, 'data-dir') ?? (flag(args, 'config') === undefined ? undefined : gatewayConfigFor(args)?.dataDir);
  const recorded = dataDir === undefined ? undefined : readRecordedCatalog(resolve(dataDir));
  if (dataDir !== undefined && !recorded) {
    console.error(`gatehouse policy test: no recorded catalog at ${catalogFile(resolve(dataDir))}: start the gateway once, so that it records its tool facts`);
    return 1;
  }
  const report = runPolicyTests(kernel, cases, (call) => recorded && recordedFacts(recorded, call));
  const strict = args.flags['strict-coverage'] === true;
  const facts = dataDir !== undefined && recorded ? { file: catalogFile(resolve(dataDir)), recordedAt: recorded.recordedAt } : undefined;
  if (args.flags.json) console.log(JSON.stringify(jsonReport(report, kernel.snapshot, facts), null, 2));
  else console.log(formatReport(report, testFiles.length, strict, facts));
  return report.failed > 0 || (strict && report.gaps.length > 0) ? 1 : 0;
}

/** The case's file:line, relative to the working directory when it lies below it. */
function where(r: CaseResult): string {
  const rel = relative(process.cwd(), r.case.file);
  return `${rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : r.case.file}${r.case.line ? `:${r.case.line}` : ''}`;
}

const rules = (ids: readonly string[]): string => (ids.length > 0 ? ids.join(', ') : '(none: the default)');

export interface RecordedFacts {
  file: string;
  recordedAt: number;
}

export function formatReport(report: TestReport, files: number, strict: boolean, facts: RecordedFacts | undefined): string {
  const lines: string[] = [];
  if (facts) {
    const missing = report.results.filter((r) => !r.recorded).length;
    lines.push(`tool facts from the catalog recorded in ${facts.file} at ${new Date(facts.recordedAt).toISOString()}; facts a call states win`);
    if (missing > 0) lines.push(`  ${missing} case${missing === 1 ? ' names a tool' : 's name tools'} not in it: decided on the facts the call states`);
    lines.push('');
  }
  for (const r of report.results.filter((x) => !x.passed)) {
    const { expect } = r.case;
    lines.push(`FAIL ${r.case.name} (${where(r)})`);
    lines.push(`  expected ${expect.effect}${expect.code ? ` (${expect.code})` : ''}${expect.ruleIds ? `, rules ${rules(expect.ruleIds)}` : ''}`);
    lines.push(`  got      ${r.effect}${r.code ? ` (${r.code})` : ''}, rules ${rules(r.ruleIds)}`);
    if (r.refusal) lines.push(`  the decision was ${r.decided}; the constraint check refused it: ${r.refusal.message}`);
    else lines.push(`  decided by ${rules(r.deciding)}: ${r.reason}`);
    for (const e of r.errors) lines.push(`  condition error in ${e.ruleId}: ${e.error}`);
  }
  const passed = report.results.length - report.failed;
  if (lines.length > 0) lines.push('');
  lines.push(`${report.results.length} cases in ${files} file${files === 1 ? '' : 's'}: ${passed} passed, ${report.failed} failed`);
  const covered = report.coverage.length - report.gaps.length;
  lines.push(`rule coverage: ${covered} of ${report.coverage.length} rules matched in some case and not matched in another`);
  for (const gap of report.gaps) {
    const missing = [gap.positive.length === 0 ? 'no case where it matches' : '', gap.negative.length === 0 ? 'no case where it does not match' : ''];
    lines.push(`  ${strict ? 'FAIL' : 'warn'} ${gap.id}: ${missing.filter(Boolean).join('; ')}`);
  }
  return lines.join('\n');
}

function jsonReport(report: TestReport, snapshot: string, facts: RecordedFacts | undefined): unknown {
  return {
    policySnapshot: snapshot,
    ...(facts ? { facts: { from: 'recorded', ...facts } } : {}),
    passed: report.results.length - report.failed,
    failed: report.failed,
    cases: report.results.map((r) => ({
      name: r.case.name,
      file: r.case.file,
      line: r.case.line,
      passed: r.passed,
      expected: r.case.expect,
      got: {
        effect: r.effect,
        ...(r.code ? { code: r.code } : {}),
        ...(r.refusal ? { refusal: r.refusal, decided: r.decided } : {}),
        ruleIds: r.ruleIds,
        reason: r.reason,
        deciding: r.deciding,
        ...(r.errors.length > 0 ? { errors: r.errors } : {}),
        ...(facts ? { recordedFacts: r.recorded } : {}),
      },
    })),
    coverage: report.coverage,
    gaps: report.gaps.map((g) => g.id),
  };
}
