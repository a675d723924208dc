import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// npm's own range logic (semver is in the tree through several dependencies); ranges like `^20.19 || >=22.12` need it.
const semver = createRequire(import.meta.url)('semver') as { minVersion(range: string): { version: string } | null; satisfies(version: string, range: string): boolean };
const root = new URL('../../', import.meta.url);
const read = (file: string) => JSON.parse(readFileSync(new URL(file, root), 'utf8'));

describe('installing on the supported Node', () => {
  it('no package in the lockfile asks for a newer Node than package.json supports, so `npm ci` prints no EBADENGINE', () => {
    const oldest = semver.minVersion(read('package.json').engines.node)!.version;
    const lock = read('package-lock.json') as { packages: Record<string, { version?: string; engines?: { node?: string } }> };
    const refusing = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && typeof p.engines?.node === 'string' && !semver.satisfies(oldest, p.engines.node))
      .map(([path, p]) => `${path}@${p.version} needs node ${p.engines!.node}`);
    expect(refusing).toEqual([]);
  });
});
