// `gatehouse dlq` as a real process on an embedded data dir, and a retry it queues being run by the gateway that
// serves that data dir (its leader reconciler), through the whole governed path.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import type { DeadLetter } from '../../src/ports.ts';
import { gatehouse } from '../helpers/cli.ts';
import { auditOf, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { deadLetter } from '../contract/job-ledger.contract.ts';

describe('gatehouse dlq on an embedded data dir', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gh-dlq-cli-'));
  const dir = ['--data-dir', dataDir];
  const secretContext = { server: 'fx', tool: 'write', arguments: { path: '/home/alice/notes', apiKey: 'sk-live-123' }, constraints: { redact: { args: ['path'], result: [] } }, wantsProgress: false };

  beforeAll(async () => {
    const ledger = new FileJobLedger(dataDir);
    await ledger.deadLetter(deadLetter('01JDEAD0000000000000000001', 1_000, { context: secretContext }));
    await ledger.deadLetter(deadLetter('01JDEAD0000000000000000002', 2_000, { code: 'GH_ERR_NO_WORKER', message: 'no live worker serves pool tools' }));
    const { context: _gone, ...noContext } = deadLetter('01JDEAD0000000000000000003', 3_000);
    await ledger.deadLetter(noContext as DeadLetter);
    await ledger.close();
  });

  it('explains itself, and refuses bad usage with exit code 2', async () => {
    const help = await gatehouse(['dlq', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('gatehouse dlq retry ID');
    expect((await gatehouse(['dlq', ...dir])).code).toBe(2);
    expect((await gatehouse(['dlq', 'explode', ...dir])).code).toBe(2);
    expect((await gatehouse(['dlq', 'show', ...dir])).code).toBe(2);
    expect((await gatehouse(['dlq', 'list', '--bogus', ...dir])).code).toBe(2);
  });

  it('lists oldest first, and shows an entry with its arguments redacted', async () => {
    const list = await gatehouse(['dlq', 'list', ...dir]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['01JDEAD0000000000000000001', '01JDEAD0000000000000000002', '01JDEAD0000000000000000003']);
    expect(lines[1]).toContain('GH_ERR_NO_WORKER');

    const json = await gatehouse(['dlq', 'list', '--json', ...dir]);
    const entries = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(entries.map((e) => [e.jobId, e.retryable])).toEqual([
      ['01JDEAD0000000000000000001', true],
      ['01JDEAD0000000000000000002', true],
      ['01JDEAD0000000000000000003', false],
    ]);
    expect(entries[0]).not.toHaveProperty('context');

    const show = await gatehouse(['dlq', 'show', '01JDEAD0000000000000000001', '--json', ...dir]);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ jobId: '01JDEAD0000000000000000001', code: 'GH_ERR_EXECUTION_IN_DOUBT', principal: 'alice', arguments: {} });
    const text = await gatehouse(['dlq', 'show', '01JDEAD0000000000000000001', ...dir]);
    expect(text.stdout).toContain('GH_ERR_EXECUTION_IN_DOUBT');
    for (const out of [json.stdout, show.stdout, text.stdout]) {
      expect(out).not.toContain('sk-live-123');
      expect(out).not.toContain('/home/alice/notes');
    }
    expect((await gatehouse(['dlq', 'show', '01JNOSUCHJOB', ...dir])).code).toBe(1);
  });

  it('queues a retry once, refuses one without arguments, drops, and audits who did what', async () => {
    const retry = await gatehouse(['dlq', 'retry', '01JDEAD0000000000000000002', '--as', 'bob', ...dir]);
    expect(retry.code).toBe(0);
    expect(retry.stdout).toContain('queued for retry');
    const again = await gatehouse(['dlq', 'retry', '01JDEAD0000000000000000002', '--as', 'carol', ...dir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already queued');
    expect((await gatehouse(['dlq', 'list', ...dir])).stdout).toMatch(/01JDEAD0000000000000000002 .*retry queued/);
    const ledger = new FileJobLedger(dataDir);
    expect((await ledger.getDead('01JDEAD0000000000000000002'))?.retry).toMatchObject({ requestedBy: 'bob' });

    expect((await gatehouse(['dlq', 'retry', '01JDEAD0000000000000000003', ...dir])).code).toBe(1);
    expect((await gatehouse(['dlq', 'retry', '01JNOSUCHJOB', ...dir])).code).toBe(1);

    const drop = await gatehouse(['dlq', 'drop', '01JDEAD0000000000000000003', '--as', 'bob', ...dir]);
    expect(drop.code).toBe(0);
    expect(await ledger.getDead('01JDEAD0000000000000000003')).toBeUndefined();
    expect((await gatehouse(['dlq', 'drop', '01JDEAD0000000000000000003', ...dir])).code).toBe(1);
    await ledger.close();

    const events = (await auditOf(dataDir, 't')).map((r) => [r.type, r.actor, r.jobId]);
    expect(events).toEqual([
      ['dlq.retry_requested', 'bob', '01JDEAD0000000000000000002'],
      ['dlq.dropped', 'bob', '01JDEAD0000000000000000003'],
    ]);
  });
});

describe('a retry queued with the CLI', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('is run again by the running gateway as its caller, once, and the outcome audited', async () => {
    const ledger = new FileJobLedger(harness.dataDir);
    const context = { server: 'fx', tool: 'slow_write', arguments: { key: 'retried-from-dlq', delayMs: 0 }, constraints: { timeoutMs: 60_000 }, wantsProgress: false };
    await ledger.deadLetter(deadLetter('01JDEADRETRY00000000000001', Date.now(), { tenant: 'default', principal: 'tester', server: 'fx', tool: 'slow_write', code: 'GH_ERR_NO_WORKER', context }));
    await ledger.close();
    expect((await gatehouse(['dlq', 'retry', '01JDEADRETRY00000000000001', '--as', 'bob', '--data-dir', harness.dataDir])).code).toBe(0);

    // The leader's reconciler runs it on its next pass.
    await waitFor(async () => (await auditOf(harness.dataDir, 'default')).some((r) => r.type === 'dlq.retried'), 'the retry to be run and audited');
    expect(readFileSync(harness.sideEffects, 'utf8').split('\n').filter((l) => l === 'retried-from-dlq')).toHaveLength(1);
    const records = await auditOf(harness.dataDir, 'default');
    const retried = records.find((r) => r.type === 'dlq.retried')!;
    expect(retried).toMatchObject({ jobId: '01JDEADRETRY00000000000001', data: { outcome: 'succeeded', requestedBy: 'bob' } });
    const retryJob = records.filter((r) => r.jobId === retried.data.retryJobId).map((r) => [r.type, r.actor]);
    expect(retryJob[0]).toEqual(['job.submitted', 'tester']);
    expect(retryJob.at(-1)?.[0]).toBe('job.succeeded');
    expect((await gatehouse(['dlq', 'list', '--data-dir', harness.dataDir])).stdout).toContain('empty');
  });
});
