import { describe, expect, it } from 'vitest';
import type { SessionFacts } from '../../src/ports.ts';
import type { SessionRecord } from '../../src/protocol/session-record.ts';

const blank = (id: string): SessionRecord => ({ id, startedAt: 1, calls: 0, tools: [], riskTags: [], labels: [], approvals: 0, budgets: {}, repeats: {} });
const counted = (record: SessionRecord | undefined, id: string): SessionRecord => {
  const base = record ?? blank(id);
  return { ...base, calls: base.calls + 1 };
};

/**
 * What every SessionFacts adapter must do. `advance` moves the adapter's clock (or waits) by ms; `reopen` opens
 * the same state again (another process, or the same data dir after a restart). `replicas`: instances open at the
 * same time share the state (Redis); embedded mode's one gateway process owns its data dir's sessions.
 */
export function runSessionFactsContract(
  name: string,
  open: () => Promise<SessionFacts> | SessionFacts,
  advance: (ms: number) => Promise<void>,
  reopen: () => Promise<SessionFacts> | SessionFacts,
  { replicas }: { replicas: boolean },
): void {
  describe(`SessionFacts contract: ${name}`, () => {
    it('reads undefined for a session never written, and what an update wrote', async () => {
      const facts = await open();
      expect(await facts.read(['s:none'])).toEqual([undefined]);
      const value = await facts.update([{ key: 's:1', ttlMs: 60_000 }], ([current]) => ({ next: [counted(current, 's:1')], value: 'done' }));
      expect(value).toBe('done');
      expect(await facts.read(['s:1', 's:none'])).toEqual([{ ...blank('s:1'), calls: 1 }, undefined]);
      await facts.close();
    });

    it('loses no update when 20 race on one session, or on two records at once', async () => {
      const facts = await open();
      const slots = [
        { key: 's:race', ttlMs: 60_000 },
        { key: 'p:race', ttlMs: 60_000 },
      ];
      const seen = await Promise.all(
        Array.from({ length: 20 }, () => facts.update(slots, ([s, p]) => ({ next: [counted(s, 's:race'), counted(p, 'p:race')], value: (s?.calls ?? 0) + 1 }))),
      );
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const [s, p] = await facts.read(['s:race', 'p:race']);
      expect([s?.calls, p?.calls]).toEqual([20, 20]);
      await facts.close();
    });

    it.skipIf(!replicas)('loses no update when two instances (replicas) take turns on one session, and checks on current counts only', async () => {
      const a = await open();
      const b = await reopen();
      const slot = [{ key: 's:turns', ttlMs: 60_000 }];
      const count = (facts: SessionFacts) => facts.update(slot, ([c]) => ({ next: [counted(c, 's:turns')], value: (c?.calls ?? 0) + 1 }));
      expect([await count(a), await count(b), await count(a), await count(b)]).toEqual([1, 2, 3, 4]);
      // A check that writes nothing still sees what the other instance wrote last.
      expect(await a.update(slot, ([c]) => ({ next: [undefined], value: c?.calls }))).toBe(4);
      await Promise.all([a.close(), b.close()]);
    });

    it.skipIf(!replicas)('reads afresh a record that expired and was written again by another instance, whatever this one saw before', async () => {
      const a = await open();
      const b = await reopen();
      const slot = [{ key: 's:again', ttlMs: 150 }];
      await a.update(slot, ([c]) => ({ next: [counted(c, 's:again')], value: undefined }));
      await advance(250);
      await b.update(slot, () => ({ next: [{ ...blank('s:again'), calls: 7 }], value: undefined }));
      // `a` last wrote the record once, as `b` did since: what `a` remembers of it must not pass for the current one.
      expect(await a.update(slot, ([c]) => ({ next: [counted(c, 's:again')], value: c?.calls }))).toBe(7);
      expect((await b.read(['s:again']))[0]?.calls).toBe(8);
      await Promise.all([a.close(), b.close()]);
    });

    it('writes nothing for a record the change leaves undefined', async () => {
      const facts = await open();
      await facts.update([{ key: 's:kept', ttlMs: 60_000 }], () => ({ next: [blank('s:kept')], value: undefined }));
      await facts.update(
        [
          { key: 's:kept', ttlMs: 60_000 },
          { key: 's:other', ttlMs: 60_000 },
        ],
        () => ({ next: [undefined, blank('s:other')], value: undefined }),
      );
      expect((await facts.read(['s:kept', 's:other'])).map((r) => r?.id)).toEqual(['s:kept', 's:other']);
      await facts.close();
    });

    it('expires a record ttlMs after the last update that wrote it', async () => {
      const facts = await open();
      await facts.update([{ key: 's:ttl', ttlMs: 200 }], ([c]) => ({ next: [counted(c, 's:ttl')], value: undefined }));
      await advance(120);
      await facts.update([{ key: 's:ttl', ttlMs: 200 }], ([c]) => ({ next: [counted(c, 's:ttl')], value: undefined }));
      await advance(120);
      expect((await facts.read(['s:ttl']))[0]?.calls).toBe(2);
      await advance(200);
      expect(await facts.read(['s:ttl'])).toEqual([undefined]);
      await facts.close();
    });

    it('shares the records with another instance on the same state (a replica, or the next run)', async () => {
      const first = await open();
      const label = { name: 'private-data', jobId: 'J1', by: 'rule-a', at: 5 };
      await first.update([{ key: 's:shared', ttlMs: 60_000 }], () => ({ next: [{ ...blank('s:shared'), labels: [label] }], value: undefined }));
      await first.close();
      const second = await reopen();
      expect((await second.read(['s:shared']))[0]?.labels).toEqual([label]);
      await second.close();
    });
  });
}
