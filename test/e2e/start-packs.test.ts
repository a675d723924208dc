import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, ROOT } from '../helpers/gateway-harness.ts';
import { startProcess } from '../helpers/start-process.ts';

// `gatehouse start` applies only the packs its config and data dir name; for an upstream none governs, it names the
// bundled pack that fits, by the command or by what the running server said of itself.

const MEMORY_SERVER = join(ROOT, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js');

function config(dir: string, packs: string): string {
  symlinkSync(MEMORY_SERVER, join(dir, 'kg.js'));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(
    file,
    [
      'listen: { http: "127.0.0.1:0" }',
      'dataDir: data',
      'upstreams:',
      `  kg: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(join(dir, 'kg.js'))}], env: { MEMORY_FILE_PATH: ${JSON.stringify(join(dir, 'kg.jsonl'))} } }`,
      `policies: [${JSON.stringify(DEFAULT_POLICY)}]`,
      packs,
      'log: { level: warn }',
    ].join('\n'),
  );
  return file;
}

describe('gatehouse start and packs', () => {
  it('names the bundled pack an ungoverned upstream fits by its serverInfo name, and applies none by itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-start-packs-'));
    const started = await startProcess(config(dir, ''), dir);
    try {
      expect(started.output()).toContain('pack: upstream "kg" fits the bundled memory pack (by its serverInfo name, memory-server); to apply it: packs: [{ name: memory, upstream: kg }]');
      const policy = (await (await fetch(started.url.replace(/\/mcp$/, '/api/policy'))).json()) as { policy: { packs?: unknown } };
      expect(policy.policy.packs).toBeUndefined();
    } finally {
      await started.stop();
    }
  });

  it('says nothing of an upstream a pack already governs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-start-packs-'));
    const started = await startProcess(config(dir, 'packs: [{ name: memory, upstream: kg }]'), dir);
    try {
      expect(started.output()).not.toContain('pack: upstream "kg"');
    } finally {
      await started.stop();
    }
  });
});
