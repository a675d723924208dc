import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { AuditTrail } from '../../src/audit/trail.ts';
import { RunMarkers, scanForInDoubt } from '../../src/audit/run-markers.ts';
import type { AuditEvent, AuditRecord } from '../../src/protocol/audit-record.ts';
import { silentLogger } from '../../src/log.ts';

const job = (jobId: string, type: string): AuditEvent => ({ tenant: 't', at: 1, type, actor: 'scheduler', jobId, data: {} });
const marker = (type: string, data: Record<string, unknown> = {}): AuditEvent => ({ tenant: 't', at: 1, type, actor: 'gateway', data });

async function chainOf(events: AuditEvent[]): Promise<FileAuditStore> {
  const store = new FileAuditStore(mkdtempSync(join(tmpdir(), 'gh-markers-')));
  await new ChainWriter(store).write(new Map([['t', events]]));
  return store;
}

async function all(store: FileAuditStore): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of store.read('t')) out.push(r);
  return out;
}

describe('jobs left in doubt by an unclean stop', () => {
  it('are the jobs sent to run since the last run marker that have no outcome record', async () => {
    const store = await chainOf([
      job('old', 'job.dispatched'), // before the marker: another run's, already settled by its start
      marker('gateway.started', { replica: 'gw-1', pid: -1, host: 'elsewhere' }),
      job('done', 'job.dispatched'),
      job('done', 'job.succeeded'),
      job('sent', 'job.dispatched'),
      job('parked', 'job.approval_required'),
      job('running', 'job.dispatched'),
      job('running', 'job.running'),
      job('timed-out', 'job.dispatched'),
      job('timed-out', 'job.timeout'),
    ]);
    const scan = await scanForInDoubt(store, 't');
    expect(scan.jobs.map((j) => [j.jobId, j.last.type])).toEqual([
      ['sent', 'job.dispatched'],
      ['running', 'job.running'],
    ]);
    expect(scan.marker?.type).toBe('gateway.started');
    expect(scan.records).toBe(9);
    await store.close();
  });

  it('after a clean stop, reads one record however long the chain', async () => {
    const events = Array.from({ length: 2_000 }, (_, i) => job(`j${i}`, i % 2 ? 'job.succeeded' : 'job.dispatched'));
    const store = await chainOf([...events, job('cut-off', 'job.dispatched'), marker('gateway.stopped')]);
    expect(await scanForInDoubt(store, 't')).toMatchObject({ jobs: [], records: 1 });
    await store.close();
  });

  it('are recorded as job.outcome_unknown at start, before gateway.started, and a second start finds none', async () => {
    const store = await chainOf([marker('gateway.started', { replica: 'gw-1', pid: -1, host: 'elsewhere' }), job('sent', 'job.dispatched')]);
    const trail = new AuditTrail(new ChainWriter(store), { flushIntervalMs: 0 });
    const clock = { now: () => 5, sleep: async () => undefined };
    const markers = new RunMarkers({ store, audit: trail, clock, log: silentLogger, replica: 'gw-2' });
    expect(await markers.started()).toEqual({ inDoubt: 1 });
    const types = (await all(store)).map((r) => [r.type, r.jobId]);
    expect(types.slice(-2)).toEqual([
      ['job.outcome_unknown', 'sent'],
      ['gateway.started', undefined],
    ]);
    expect(await new RunMarkers({ store, audit: trail, clock, log: silentLogger, replica: 'gw-3' }).started()).toEqual({ inDoubt: 0 });
    await trail.close();
  });

  it('are left alone while the gateway that started that run still runs on this data dir', async () => {
    const { hostname } = await import('node:os');
    const store = await chainOf([marker('gateway.started', { replica: 'gw-1', pid: 4242, host: hostname() }), job('sent', 'job.dispatched')]);
    const trail = new AuditTrail(new ChainWriter(store), { flushIntervalMs: 0 });
    const markers = new RunMarkers({ store, audit: trail, clock: { now: () => 5, sleep: async () => undefined }, log: silentLogger, replica: 'gw-2', isAlive: (pid) => pid === 4242 });
    expect(await markers.started()).toEqual({ inDoubt: 0 });
    await trail.close();
  });
});
