import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT } from './gateway-harness.ts';

export const GATEHOUSE_BIN = join(ROOT, 'bin/gatehouse.js');

/** Runs the real `gatehouse` CLI in another process. */
export function gatehouse(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [GATEHOUSE_BIN, ...args], { cwd: options.cwd ?? ROOT, timeout: 30_000, ...(options.env ? { env: { ...process.env, ...options.env } } : {}) }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The data dir's checkpoint public key, as `audit pubkey` prints it, in a file for `--pubkey`. */
export async function pubkeyFile(dir: string): Promise<string> {
  const result = await gatehouse(['audit', 'pubkey', '--data-dir', dir]);
  expect(result.code).toBe(0);
  const file = join(dir, 'audit.pub');
  writeFileSync(file, result.stdout);
  return file;
}
