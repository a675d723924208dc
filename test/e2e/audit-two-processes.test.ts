import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway-harness.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { verifyStore } from '../../src/audit/verify.ts';
import { lastMark } from '../../adapters/file/audit-index-chunk.ts';
import { readFileSync, statSync } from 'node:fs';

// The README's promise: "Appends take a lock and compare the chain head, so the gateway and the CLI never fork a
// chain." Two real processes, each holding its chain file open between appends, append to one chain at once.

const APPENDER = join(ROOT, 'test/fixtures/audit-appender.ts');
const BATCHES = 300;

function appender(dataDir: string, label: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, dataDir, label, String(BATCHES)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const ready = new Promise((resolve) => child.stdout.once('data', resolve));
  /** How many batches it wrote, once it exited. */
  const batches = new Promise<number>((resolve, reject) =>
    child.on('exit', (code) => {
      const done = /done (\d+)/.exec(stdout);
      if (code === 0 && done) resolve(Number(done[1]));
      else reject(new Error(`appender ${label} exited ${code}: ${stderr}`));
    }),
  );
  return { start: () => child.stdin.end('go\n'), ready, batches };
}

/** What one writer appended, in chain order: batch and index within it. */
const writtenBy = (records: AuditRecord[], label: string) => records.filter((r) => r.actor === label).map((r) => `${(r.data as { batch: number }).batch}.${(r.data as { j: number }).j}`);
/** What a writer of `batches` batches appends, in its order. */
const expected = (batches: number) => Array.from({ length: batches }, (_, i) => Array.from({ length: 1 + (i % 3) }, (_, j) => `${i}.${j}`)).flat();

describe('two processes appending to one chain at once', () => {
  it('leave one chain that verifies: every record once, each writer’s in its order, no fork', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-audit-two-'));
    const writers = [appender(dataDir, 'a'), appender(dataDir, 'b')];
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.start();
    const [a, b] = await Promise.all(writers.map((w) => w.batches));

    const store = new FileAuditStore(dataDir);
    const records: AuditRecord[] = [];
    for await (const r of store.read('t')) records.push(r);
    expect(await verifyStore(store, 't')).toMatchObject({ ok: true, records: expected(a).length + expected(b).length });
    expect(writtenBy(records, 'a')).toEqual(expected(a));
    expect(writtenBy(records, 'b')).toEqual(expected(b));
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    // They ran together: the chain passes from one writer to the other and back.
    expect(records.filter((r, i) => i > 0 && r.actor !== records[i - 1].actor).length).toBeGreaterThan(1);
    // Each kept the index under the same lock, taking it over from the other: it covers the whole chain, an entry
    // per record, without a rebuild.
    const index = readFileSync(store.indexPath('t'), 'latin1');
    expect(lastMark(Buffer.from(index, 'latin1'))?.cover).toMatchObject({ end: statSync(store.filePath('t')).size, seq: records.length });
    expect(index.split('\n').filter((line) => /^\d/.test(line)).map((line) => Number(line.split('\t')[0]))).toEqual(records.map((r) => r.seq));
    await store.close();
  });
});
