// The live tail behind the console's Activity feed: calls assembled from the records a writer appends (heard in
// process) or the chain gains (read forward), each watcher's filter applied, one tail per tenant, and never a
// watcher's work on the writer's path.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { AuditQuery, type AuditCall } from '../../src/audit/query.ts';
import { AuditTail } from '../../src/audit/tail.ts';
import { callEvents, generatedCall } from '../helpers/audit-calls.ts';
import { waitFor } from '../helpers/gateway-harness.ts';

const tails: AuditTail[] = [];
afterEach(() => tails.splice(0).forEach((t) => t.close()));

function setUp(mode: 'pushed' | 'polled') {
  const dir = mkdtempSync(join(tmpdir(), 'gh-audit-tail-'));
  const store = new FileAuditStore(dir, { fsync: 'off' });
  const writer = new ChainWriter(store);
  const queries = new AuditQuery(store);
  const tail = new AuditTail({ source: mode === 'pushed' ? { pushed: writer, reader: store } : { polled: store, everyMs: 20 }, queries });
  tails.push(tail);
  const write = async (i: number, tenant = 'default') => {
    const call = generatedCall(i, Date.now());
    await writer.write(new Map([[tenant, callEvents(call, tenant)]]));
    return call;
  };
  return { dir, store, writer, tail, write };
}

/** The latest state of every call a watcher was given, by job id. */
function collector() {
  const seen = new Map<string, AuditCall>();
  let batches = 0;
  return {
    seen,
    get batches() {
      return batches;
    },
    deliver: (calls: AuditCall[]) => {
      batches += 1;
      for (const call of calls) seen.set(call.jobId, call);
    },
  };
}

describe('the audit tail', () => {
  it('hears the writer\'s appends as calls, each watcher filtered, and delivers only after the append resolved', async () => {
    const { tail, write } = setUp('pushed');
    const all = collector();
    const denied = collector();
    tail.subscribe('default', {}, all.deliver);
    tail.subscribe('default', { outcome: 'denied' }, denied.deliver);
    await write(0);
    expect(all.batches).toBe(0); // the writer only queued the records: nothing ran on its path
    for (let i = 1; i < 10; i++) await write(i);
    await waitFor(() => all.seen.size === 10, 'ten calls');
    const calls = [...all.seen.values()];
    const expected = Array.from({ length: 10 }, (_, i) => generatedCall(i, 0));
    expect(calls.map((c) => [c.tool, c.outcome, c.decision])).toEqual(expected.map((c) => [c.tool, c.outcome, c.decision]));
    expect([...denied.seen.values()].map((c) => c.outcome)).toEqual(expected.filter((c) => c.outcome === 'denied').map(() => 'denied'));
  });

  it("fills in what another process appended between the writer's appends (the CLI's), in order", async () => {
    const { dir, tail, write } = setUp('pushed');
    const all = collector();
    tail.subscribe('default', {}, all.deliver);
    await write(0);
    await waitFor(() => all.seen.size === 1, 'the first call');
    const other = new ChainWriter(new FileAuditStore(dir, { fsync: 'off' }));
    const cli = generatedCall(1, Date.now());
    await other.write(new Map([['default', callEvents(cli, 'default')]]));
    await other.close();
    await write(2);
    await waitFor(() => all.seen.size === 3, 'the other process\'s call and the next one');
    expect([...all.seen.values()].map((c) => c.tool)).toEqual([0, 1, 2].map((i) => generatedCall(i, 0).tool));
  });

  it('follows only the tenants watched, and stops hearing the writer when the last watcher leaves', async () => {
    const { tail, write } = setUp('pushed');
    const b = collector();
    const stop = tail.subscribe('tenant-b', {}, b.deliver);
    expect(tail.watching).toBe(1);
    await write(0, 'default');
    await write(1, 'tenant-b');
    await waitFor(() => b.seen.size === 1, 'tenant-b\'s call');
    expect([...b.seen.values()][0].tenant).toBe('tenant-b');
    stop();
    expect(tail.watching).toBe(0);
    await write(2, 'tenant-b');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(b.seen.size).toBe(1);
  });

  it('reads the beginning of a job that started before it was watched, when its later records arrive', async () => {
    const { writer, tail: t } = setUp('pushed');
    const call = generatedCall(1, Date.now()); // a write that waits for approval, then succeeds
    const events = callEvents({ ...call, outcome: 'succeeded' });
    await writer.write(new Map([['default', events.slice(0, 3)]]));
    const seen = collector();
    t.subscribe('default', {}, seen.deliver);
    await writer.write(new Map([['default', events.slice(3)]]));
    await waitFor(() => seen.seen.get(call.jobId)?.outcome === 'succeeded', 'the call to be read and followed to its end');
    expect(seen.seen.get(call.jobId)).toMatchObject({ tool: call.tool, principal: call.principal, decision: 'require_approval' });
  });

  it('reads the chain forward from where it ended when watching began (distributed mode), whoever appends', async () => {
    const { tail, write } = setUp('polled');
    const before = await write(0); // not in the feed
    const seen = collector();
    tail.subscribe('default', {}, seen.deliver);
    await new Promise((resolve) => setTimeout(resolve, 60)); // the first poll learns where the chain ends
    for (let i = 1; i < 6; i++) await write(i);
    await waitFor(() => seen.seen.size === 5, 'the five calls appended after');
    expect([...seen.seen.keys()]).not.toContain(before.jobId);
  });
});
