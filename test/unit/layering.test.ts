// The README: "src/ the core, which imports ports and never an adapter", the composition roots in src/runtime/
// being "the one place that picks adapters". Read from the sources, so that a core file reaching for a concrete
// technology fails here rather than in review.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway-harness.ts';

const SRC = join(ROOT, 'src');
const ADAPTERS = join(ROOT, 'adapters');
const ROOTS = join(SRC, 'runtime');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every module a file imports by a relative path (static and dynamic imports, and re-exports), resolved. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specifiers.map((s) => resolve(dirname(file), s));
}

describe('layering', () => {
  it('keeps adapters out of the core: only the composition roots in src/runtime import them', () => {
    const offenders = sources(SRC)
      .filter((file) => !file.startsWith(`${ROOTS}/`))
      .flatMap((file) => importsOf(file).filter((target) => target.startsWith(`${ADAPTERS}/`)).map((target) => `${relative(ROOT, file)} → ${relative(ROOT, target)}`));
    expect(offenders).toEqual([]);
  });

  // The fronts and the approver's HTTP surface get the narrow services they use, built by the runtime; reaching
  // for the assembled Gateway would make it a service locator again.
  it('keeps the fronts and the API off the runtime: nothing under src/gateway/ or src/api/ imports src/runtime/', () => {
    const offenders = [join(SRC, 'gateway'), join(SRC, 'api')]
      .flatMap(sources)
      .flatMap((file) => importsOf(file).filter((target) => target.startsWith(`${ROOTS}/`)).map((target) => `${relative(ROOT, file)} → ${relative(ROOT, target)}`));
    expect(offenders).toEqual([]);
  });

  it('reads imports as the check needs (an adapter import in a composition root is found)', () => {
    expect(importsOf(join(ROOTS, 'embedded.ts')).some((target) => target.startsWith(`${ADAPTERS}/`))).toBe(true);
  });
});
