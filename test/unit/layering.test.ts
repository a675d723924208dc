// The README: "src/ the core, which imports ports and never an adapter", the composition roots in src/runtime/
// being "the one place that picks adapters"; the ports import protocol/ only, and an adapter needs nothing of the
// core but the ports, protocol/, errors and the logger. Read from the sources, so that a file reaching for a
// concrete technology, or a port or adapter leaning on core internals, fails here rather than in review.
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

/** What an adapter may import of the core besides src/protocol/. */
const ADAPTER_MAY_USE = new Set(['ports.ts', 'errors.ts', 'log.ts'].map((f) => join(SRC, f)));
const inProtocol = (target: string) => target.startsWith(`${join(SRC, 'protocol')}/`);

/** The folder a file belongs to, as the cycle check counts them: `src/approvals` for all below it; a top-level file is its own. */
const folderOf = (file: string) => file.split('/').slice(0, 2).join('/');

/**
 * The strongly connected components (Tarjan) of an import graph that hold files of more than one folder: each is
 * an import cycle between folders, which makes neither one a layer above the other. Files sorted, components too.
 */
function crossFolderCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (new Set(component.map(folderOf)).size > 1) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/**
 * The README's code map, as imports: what each folder (or top-level file) may import besides itself. Lower layers
 * first; `runtime` and `cli` assemble and drive everything, and only `runtime` picks adapters.
 */
const BASE = ['src/errors.ts', 'src/log.ts', 'src/protocol'];
const CORE = [...BASE, 'src/ports.ts'];
const ADAPTER = [...CORE];
const CODE_MAP: Record<string, readonly string[]> = {
  'src/errors.ts': [],
  'src/protocol': ['src/errors.ts'],
  'src/log.ts': ['src/enforcement'],
  'src/ports.ts': ['src/errors.ts', 'src/protocol'],
  'src/config': [...BASE, 'src/kernel', 'src/audit'],
  'src/kernel': [...CORE, 'src/config', 'src/enforcement'],
  'src/enforcement': [...CORE, 'src/kernel'],
  'src/audit': [...CORE, 'src/kernel', 'src/enforcement'],
  'src/scheduler': [...CORE, 'src/config', 'src/kernel', 'src/enforcement', 'src/audit'],
  'src/session': [...CORE, 'src/kernel', 'src/enforcement'],
  'src/approvals': [...CORE, 'src/kernel', 'src/enforcement', 'src/audit', 'src/scheduler'],
  'src/call': [...CORE, 'src/config', 'src/kernel', 'src/enforcement', 'src/audit', 'src/scheduler', 'src/approvals', 'src/session'],
  'src/api': [...CORE, 'src/kernel', 'src/audit', 'src/approvals', 'src/call'],
  'src/gateway': [...CORE, 'src/kernel', 'src/enforcement', 'src/approvals', 'src/call', 'src/api'],
  'src/worker': CORE,
  'src/packs': [...CORE, 'src/config', 'src/kernel'],
  'src/runtime': [...CORE, 'src/config', 'src/kernel', 'src/enforcement', 'src/audit', 'src/scheduler', 'src/approvals', 'src/session', 'src/call', 'src/api', 'src/gateway', 'src/worker', 'src/packs', 'adapters/memory', 'adapters/file', 'adapters/mcp', 'adapters/nats', 'adapters/redis', 'adapters/http', 'adapters/prometheus', 'adapters/otel', 'adapters/oauth'],
  'src/cli': [...CORE, 'src/config', 'src/kernel', 'src/enforcement', 'src/audit', 'src/scheduler', 'src/approvals', 'src/session', 'src/call', 'src/api', 'src/gateway', 'src/runtime', 'src/packs'],
  'adapters/memory': ADAPTER,
  'adapters/file': [...ADAPTER, 'adapters/memory'],
  'adapters/mcp': [...ADAPTER, 'adapters/http'],
  'adapters/nats': ADAPTER,
  'adapters/redis': ADAPTER,
  'adapters/http': ADAPTER,
  'adapters/prometheus': ADAPTER,
  'adapters/otel': ADAPTER,
  'adapters/oauth': [...ADAPTER, 'adapters/http'],
};

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

  it('keeps the ports above the wire only: src/ports.ts imports nothing but src/protocol/ and src/errors.ts', () => {
    const ports = join(SRC, 'ports.ts');
    const offenders = importsOf(ports).filter((target) => !inProtocol(target) && target !== join(SRC, 'errors.ts'));
    expect(offenders.map((target) => relative(ROOT, target))).toEqual([]);
    // Type-only imports count: the records the ports carry are imported as types.
    expect(importsOf(ports)).toContain(join(SRC, 'protocol', 'approval-record.ts'));
  });

  it('lets adapters use of the core only src/ports.ts, src/protocol/, src/errors.ts and src/log.ts', () => {
    const offenders = sources(ADAPTERS).flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith(`${SRC}/`) && !inProtocol(target) && !ADAPTER_MAY_USE.has(target))
        .map((target) => `${relative(ROOT, file)} → ${relative(ROOT, target)}`),
    );
    expect(offenders).toEqual([]);
  });

  it('has no import cycle that spans files of two folders (src/ and adapters/, type-only imports included)', () => {
    const graph = new Map([...sources(SRC), ...sources(ADAPTERS)].map((file) => [relative(ROOT, file), importsOf(file).map((target) => relative(ROOT, target))]));
    expect(crossFolderCycles(graph)).toEqual([]);
  });

  it('keeps every folder to what the README code map says it may import', () => {
    const offenders = [...sources(SRC), ...sources(ADAPTERS)].flatMap((file) => {
      const from = folderOf(relative(ROOT, file));
      const allowed = CODE_MAP[from];
      if (!allowed) return [`${from} is not in the code map`];
      return importsOf(file)
        .map((target) => relative(ROOT, target))
        .filter((target) => !target.startsWith('node_modules') && folderOf(target) !== from && !allowed.includes(folderOf(target)))
        .map((target) => `${relative(ROOT, file)} → ${target}`);
    });
    expect(offenders).toEqual([]);
  });

  it('finds a cycle between folders, and lets one within a folder be (the cycle check itself)', () => {
    const graph = new Map([
      ['src/a/x.ts', ['src/b/y.ts', 'src/a/w.ts']],
      ['src/b/y.ts', ['src/b/z.ts']],
      ['src/b/z.ts', ['src/a/x.ts', 'node:fs']],
      ['src/a/w.ts', ['src/a/sub/v.ts']],
      ['src/a/sub/v.ts', ['src/a/w.ts']],
    ]);
    expect(crossFolderCycles(graph)).toEqual([['src/a/x.ts', 'src/b/y.ts', 'src/b/z.ts']]);
  });
});
