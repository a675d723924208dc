import { describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/audit/trail.ts';
import type { AuditWriter } from '../../src/audit/chain-writer.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import { silentLogger } from '../../src/log.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { verifyChain } from '../../src/audit/verify.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';

const event = (type: string, tenant = 't'): AuditEvent => ({ tenant, at: 1, type, actor: 'a', data: {} });

/** A writer that fails the tenants it is told to, once each. */
function flakyWriter(failOnce: string[]) {
  const written: string[] = [];
  const writer: AuditWriter = {
    async write(batch) {
      const failed = [...batch.keys()].filter((t) => failOnce.includes(t));
      for (const [tenant, events] of batch) if (!failed.includes(tenant)) written.push(...events.map((e) => `${tenant}:${e.type}`));
      failOnce.splice(0, failOnce.length, ...failOnce.filter((t) => !failed.includes(t)));
      if (failed.length) throw Object.assign(new Error('disk full'), { failed });
    },
    close: async () => undefined,
  };
  return { writer, written };
}

describe('audit trail buffering', () => {
  it('keeps a failed batch and writes it again, ahead of later events, and only for the tenant that failed', async () => {
    const { writer, written } = flakyWriter(['t']);
    const errors: unknown[] = [];
    const trail = new AuditTrail(writer, { flushIntervalMs: 1_000_000, onError: (e) => errors.push(e) });
    trail.record(event('a'));
    trail.record(event('x', 'other'));
    await trail.flush();
    expect(errors).toHaveLength(1);
    expect(written).toEqual(['other:x']);
    trail.record(event('b'));
    await trail.flush();
    expect(written).toEqual(['other:x', 't:a', 't:b']);
    await trail.close();
  });

  it('retries on close, then spills what it could not write, says so at error level, and rejects with the count', async () => {
    const writer: AuditWriter = { write: async () => Promise.reject(new Error('read-only file system')), close: async () => undefined };
    const spilled: AuditEvent[] = [];
    const said: string[] = [];
    const log = { ...silentLogger, error: (msg: string) => void said.push(msg) };
    const trail = new AuditTrail(writer, { flushIntervalMs: 1_000_000, writeTimeoutMs: 30, onError: () => undefined, spill: async (events) => (spilled.push(...events), '/data/audit-unwritten/x.jsonl'), log });
    trail.record(event('a'));
    trail.record(event('b'));
    await expect(trail.close()).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_UNAVAILABLE', data: { lost: 2, spilledTo: '/data/audit-unwritten/x.jsonl' } });
    expect(spilled.map((e) => e.type)).toEqual(['a', 'b']);
    expect(said).toEqual([expect.stringMatching(/^2 audit events could not be written .* saved in \/data\/audit-unwritten\/x\.jsonl$/)]);
  });

  it('logs every event it could neither write nor spill', async () => {
    const writer: AuditWriter = { write: async () => Promise.reject(new Error('disk full')), close: async () => undefined };
    const said: { msg: string; fields?: Record<string, unknown> }[] = [];
    const log = { ...silentLogger, error: (msg: string, fields?: Record<string, unknown>) => void said.push({ msg, fields }) };
    const trail = new AuditTrail(writer, { writeTimeoutMs: 10, onError: () => undefined, spill: async () => Promise.reject(new Error('disk full')), log });
    trail.record(event('a'));
    await expect(trail.close()).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_UNAVAILABLE', data: { lost: 1 } });
    expect(said.map((s) => s.fields)).toEqual([{ lost: 1 }, { event: event('a') }]);
  });

  it('writes what failed once when close retries it, and loses nothing', async () => {
    const { writer, written } = flakyWriter(['t']);
    const trail = new AuditTrail(writer, { flushIntervalMs: 1_000_000, onError: () => undefined });
    trail.record(event('a'));
    await trail.close();
    expect(written).toEqual(['t:a']);
  });

  it('writes what is buffered on close', async () => {
    const { writer, written } = flakyWriter([]);
    const trail = new AuditTrail(writer, { flushIntervalMs: 1_000_000 });
    trail.record(event('a'));
    await trail.close();
    expect(written).toEqual(['t:a']);
  });
});

describe('the backlog while a write is in flight', () => {
  it('still counts the events being written, so a failing write never reads as an empty backlog', async () => {
    let release!: () => void;
    let calls = 0;
    const writer = {
      // The first write hangs until released, then fails; later ones fail at once.
      write: () => (calls++ === 0 ? new Promise<void>((_, reject) => (release = () => reject(new Error('disk full')))) : Promise.reject(new Error('disk full'))),
      close: async () => undefined,
    };
    const trail = new AuditTrail(writer as never, { flushIntervalMs: 0, maxBacklog: 2, writeTimeoutMs: 10, onError: () => undefined });
    for (let i = 0; i < 3; i++) trail.record(event('x'));
    const flushing = trail.flush();
    expect(trail.backlog).toBe(3);
    release();
    await flushing;
    // Failing, with the backlog at its limit: new work is refused without waiting for anyone to give up.
    expect(trail.backlog).toBe(3);
    expect(trail.healthy).toBe(false);
    expect(trail.accepting).toBe(false);
    await trail.close().catch(() => undefined);
  });
});

describe('two writers on one chain (the gateway and the CLI)', () => {
  it('re-chain onto what the other appended, though each expects the head its own last append left', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-two-writers-'));
    const gateway = new ChainWriter(new FileAuditStore(dataDir));
    const cli = new ChainWriter(new FileAuditStore(dataDir));
    for (let i = 0; i < 3; i++) {
      await gateway.write(new Map([['t', [event(`gw${i}`)]]]));
      await cli.write(new Map([['t', [event(`cli${i}`), event(`cli${i}b`)]]]));
    }
    const store = new FileAuditStore(dataDir);
    const report = await verifyChain('t', store.read('t'));
    expect(report).toMatchObject({ ok: true, records: 9 });
  });
});
