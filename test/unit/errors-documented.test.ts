import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../../src/errors.ts';

const ROOT = join(import.meta.dirname, '../..');

describe('the README', () => {
  it("names every error code of src/errors.ts in its Errors table", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## Errors\n');
    const table = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const missing = Object.keys(ERROR_CATALOGUE).filter((code) => !table.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});
