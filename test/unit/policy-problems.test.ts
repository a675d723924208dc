import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicyFiles } from '../../src/kernel/bundle.ts';
import { problemsOf } from './config.test.ts';

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-policy-problems-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const invalid = (paths: string[]) => problemsOf(() => loadPolicyFiles(paths), 'GH_ERR_POLICY_INVALID');

describe('policy errors: every mistake of every file at once, each at its file, line and key', () => {
  it('a rule id defined twice: both places, with their lines', () => {
    const dir = folder({
      'a.yaml': 'version: 2\nrules:\n  - id: other\n    effect: allow\n  - id: same\n    effect: allow\n',
      'b.yaml': 'version: 2\nkind: overlay\nrules:\n  - id: same\n    effect: deny\n',
    });
    expect(invalid([dir])).toEqual([
      { file: join(dir, 'a.yaml'), line: 5, path: ['rules', 1, 'id'] },
      { file: join(dir, 'b.yaml'), line: 4, path: ['rules', 0, 'id'] },
    ]);
  });

  it('a missing file, a broken file and an invalid rule, together', () => {
    const dir = folder({
      'bad.yaml': 'version: 2\nrules:\n  - id: oops\n    effect: maybe\n  - id: fine\n    effect: allow\n    matc: {}\n',
      'broken.yaml': 'version: 2\nrules: [\n',
    });
    const problems = invalid([join(dir, 'missing.yaml'), join(dir, 'bad.yaml'), join(dir, 'broken.yaml')]);
    expect(problems).toEqual([
      { file: join(dir, 'missing.yaml'), line: undefined, path: [] },
      { file: join(dir, 'bad.yaml'), line: 4, path: ['rules', 0, 'effect'] },
      { file: join(dir, 'bad.yaml'), line: 7, path: ['rules', 1, 'matc'] },
      ...problems.slice(3).map(() => ({ file: join(dir, 'broken.yaml'), line: expect.any(Number), path: [] })),
    ]);
    expect(problems.length).toBeGreaterThan(3);
  });

  it('a duplicate id across files is still found when another file is broken', () => {
    const dir = folder({
      'a.yaml': 'version: 1\nrules: [{ id: x, effect: allow }]\n',
      'b.yaml': 'version: 1\nrules: [{ id: x, effect: deny }]\n',
      'c.yaml': 'version: 9\n',
    });
    expect(invalid([dir]).map((p) => [p.file, p.path])).toEqual([
      [join(dir, 'c.yaml'), ['version']],
      [join(dir, 'a.yaml'), ['rules', 0, 'id']],
      [join(dir, 'b.yaml'), ['rules', 0, 'id']],
    ]);
  });
});
