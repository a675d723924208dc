// The policy and config loaders under garbled files: the bundled default policy and a full example config, cut,
// byte-flipped, lines dropped or duplicated, keys renamed. Every outcome is a loaded file or one coded error
// (GH_ERR_POLICY_INVALID, GH_ERR_CONFIG_INVALID), never another exception. FUZZ_RUNS / 10 files each.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadPolicyFiles } from '../../src/kernel/bundle.ts';
import { compilePolicy } from '../../src/kernel/compile.ts';
import { loadConfig } from '../../src/config/load.ts';
import { isGatewayError } from '../../src/errors.ts';
import { ROOT } from '../helpers/gateway-harness.ts';

const RUNS = Math.max(100, Math.round(Number(process.env.FUZZ_RUNS ?? 10_000) / 10));
const dir = mkdtempSync(join(tmpdir(), 'gh-fuzz-loaders-'));

/** A file's text changed the ways an editor, a bad merge or an attacker changes one. */
const garbled = (text: string): fc.Arbitrary<string> => {
  const lines = text.split('\n');
  return fc.oneof(
    fc.integer({ min: 0, max: text.length }).map((at) => text.slice(0, at)),
    fc.tuple(fc.integer({ min: 0, max: text.length - 1 }), fc.integer({ min: 0, max: 0xffff })).map(([at, code]) => text.slice(0, at) + String.fromCharCode(code) + text.slice(at + 1)),
    fc.integer({ min: 0, max: lines.length - 1 }).map((at) => lines.filter((_, i) => i !== at).join('\n')),
    fc.integer({ min: 0, max: lines.length - 1 }).map((at) => [...lines.slice(0, at + 1), lines[at], ...lines.slice(at + 1)].join('\n')),
    fc.tuple(fc.integer({ min: 0, max: lines.length - 1 }), fc.string({ maxLength: 40 })).map(([at, line]) => [...lines.slice(0, at), line, ...lines.slice(at)].join('\n')),
    fc.tuple(fc.integer({ min: 0, max: lines.length - 1 }), fc.constantFrom('  ', '\t', '- ', '&a ', '*a', '!!js/function ', '<<: ', '{', '[', '"', "'")).map(([at, prefix]) => lines.map((l, i) => (i === at ? prefix + l : l)).join('\n')),
  );
};

/** Loads `text` from a file; returns the error code it was refused with, or 'ok'. Any other exception fails the test. */
function outcome(name: string, text: string, load: (file: string) => unknown): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  try {
    load(file);
    return 'ok';
  } catch (err) {
    if (isGatewayError(err)) return err.code;
    throw new Error(`${name} threw ${(err as Error)?.stack ?? err} for:\n${text}`);
  }
}

describe(`the loaders under ${RUNS} garbled files each`, () => {
  it('a garbled policy loads and compiles, or is GH_ERR_POLICY_INVALID', () => {
    const policy = readFileSync(join(ROOT, 'policies/default.yaml'), 'utf8');
    const codes = new Set<string>();
    fc.assert(
      fc.property(garbled(policy), (text) => {
        codes.add(outcome('policy.yaml', text, (file) => compilePolicy(loadPolicyFiles([file]))));
      }),
      { numRuns: RUNS, seed: 20261205 },
    );
    expect([...codes].sort()).toEqual(['GH_ERR_POLICY_INVALID', 'ok']); // both paths taken, and nothing else
  });

  it('a garbled config loads, or is GH_ERR_CONFIG_INVALID', () => {
    const config = readFileSync(join(ROOT, 'examples/team/gatehouse.yaml'), 'utf8');
    const env = { NATS_PASSWORD: 'n', REDIS_PASSWORD: 'r', GATEHOUSE_SIGNING_KEY: 'k'.repeat(44), GATEHOUSE_API_KEY: 'k' };
    const codes = new Set<string>();
    fc.assert(
      fc.property(garbled(config), (text) => {
        codes.add(outcome('gatehouse.yaml', text, (file) => loadConfig(file, { ...process.env, ...env })));
      }),
      { numRuns: RUNS, seed: 20261205 },
    );
    expect([...codes].sort()).toEqual(['GH_ERR_CONFIG_INVALID', 'ok']); // both paths taken, and nothing else
  });
});
