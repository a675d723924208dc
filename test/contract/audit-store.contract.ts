import { describe, expect, it } from 'vitest';
import type { AuditStore } from '../../src/ports.ts';
import { GENESIS, type AuditEvent } from '../../src/protocol/audit-record.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { verifyChain, verifyStore } from '../../src/audit/verify.ts';
import { ChainWriter, type CheckpointOptions } from '../../src/audit/chain-writer.ts';
import { CHECKPOINT_TYPE, CheckpointKey } from '../../src/audit/checkpoint.ts';

const event = (type: string, tenant = 't'): AuditEvent => ({ tenant, at: 1, type, actor: 'a', data: { n: type } });

async function collect(store: AuditStore, tenant: string) {
  const out = [];
  for await (const r of store.read(tenant)) out.push(r);
  return out;
}

/**
 * How a test removes the newest `n` records of a chain behind the store's back, as someone editing the data
 * would: the file adapter truncates the file, the Redis adapter pops the list.
 */
export type CutNewest = (tenant: string, n: number) => Promise<void>;

/**
 * What every AuditStore adapter must do: CAS appends on the chain head, per tenant, readable in order; refuse to
 * append onto a chain whose newest records were removed, and report such a chain as shorter than its head.
 */
export function runAuditStoreContract(name: string, makeStore: () => Promise<AuditStore> | AuditStore, reopen: () => Promise<AuditStore> | AuditStore, cutNewest: CutNewest): void {
  describe(`AuditStore contract: ${name}`, () => {
    it('starts empty at the genesis head and appends in order', async () => {
      const store = await makeStore();
      expect(await store.head('t')).toEqual(GENESIS);
      const records = chainEvents(GENESIS, [event('a'), event('b')]);
      expect(await store.append('t', GENESIS, records)).toEqual({ ok: true });
      expect(await store.head('t')).toEqual({ seq: 2, hash: records[1].hash });
      expect((await collect(store, 't')).map((r) => r.type)).toEqual(['a', 'b']);
      expect((await verifyChain('t', store.read('t'))).ok).toBe(true);
      await store.close();
    });

    it('refuses an append on a stale head and reports the current one', async () => {
      const store = await makeStore();
      const first = chainEvents(GENESIS, [event('a')]);
      await store.append('t', GENESIS, first);
      const result = await store.append('t', GENESIS, chainEvents(GENESIS, [event('x')]));
      expect(result).toEqual({ ok: false, head: { seq: 1, hash: first[0].hash } });
      await store.close();
    });

    it('never forks a chain when two writers race', async () => {
      const a = await makeStore();
      const b = await reopen();
      const write = async (store: AuditStore, label: string) => {
        for (let i = 0; i < 10; i++) {
          for (;;) {
            const head = await store.head('t');
            if ((await store.append('t', head, chainEvents(head, [event(`${label}${i}`)]))).ok) break;
          }
        }
      };
      await Promise.all([write(a, 'a'), write(b, 'b')]);
      const records = await collect(a, 't');
      expect(records).toHaveLength(20);
      expect((await verifyChain('t', records)).ok).toBe(true);
      await a.close();
      await b.close();
    });

    it('refuses to append onto a chain whose newest records were cut while it ran, and says it is shorter than its head', async () => {
      const store = await makeStore();
      const records = chainEvents(GENESIS, [event('a'), event('b'), event('c')]);
      expect(await store.append('t', GENESIS, records)).toEqual({ ok: true });
      await cutNewest('t', 2);
      // The writer appends on the head it knows, as the chain writer does between batches.
      const head = { seq: 3, hash: records[2].hash };
      await expect(store.append('t', head, chainEvents(head, [event('d')]))).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_TRUNCATED' });
      await expect(store.head('t')).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_TRUNCATED' });
      // Nor does it append onto what is left: the records after the cut would read as a whole chain.
      const left = { seq: 1, hash: records[0].hash };
      await expect(store.append('t', left, chainEvents(left, [event('d')]))).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_TRUNCATED' });
      expect((await collect(store, 't')).map((r) => r.type)).toEqual(['a']);
      expect(await store.recordedHead('t')).toEqual(head);
      // What `gatehouse audit verify` reports: the records left verify, but the chain is shorter than its head.
      expect(await verifyStore(store, 't')).toMatchObject({ ok: false, code: 'GH_ERR_AUDIT_TRUNCATED', records: 1, head: left, recordedHead: head });
      await store.close();
    });

    it('notices a cut made while it was stopped, from its recorded head', async () => {
      const store = await makeStore();
      const records = chainEvents(GENESIS, [event('a'), event('b'), event('c')]);
      await store.append('t', GENESIS, records);
      await store.close();
      await cutNewest('t', 1);
      const again = await reopen();
      await expect(again.head('t')).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_TRUNCATED' });
      expect(await again.recordedHead('t')).toEqual({ seq: 3, hash: records[2].hash });
      await again.close();
    });

    it('reads a chain newest first, across pages and chunks', async () => {
      const store = await makeStore();
      const records = chainEvents(GENESIS, Array.from({ length: 1_234 }, (_, i) => event(`e${i}`)));
      await store.append('t', GENESIS, records);
      const seqs: number[] = [];
      for await (const r of store.readBack('t')) seqs.push(r.seq);
      expect(seqs).toEqual(records.map((r) => r.seq).reverse());
      await store.close();
    });

    it('keeps tenants apart', async () => {
      const store = await makeStore();
      await store.append('t1', GENESIS, chainEvents(GENESIS, [event('a', 't1')]));
      await store.append('t2', GENESIS, chainEvents(GENESIS, [event('b', 't2')]));
      expect(await store.tenants()).toEqual(['t1', 't2']);
      expect((await collect(store, 't2')).map((r) => r.type)).toEqual(['b']);
      await store.close();
    });

    it('carries signed checkpoints written by two racing chain writers, each record at a multiple of N signed once', async () => {
      const key = CheckpointKey.parse(Buffer.alloc(32, 9).toString('base64'));
      const options: CheckpointOptions = { every: 3, key: async () => key, atClose: true, now: () => 1 };
      const [storeA, storeB] = [await makeStore(), await reopen()];
      const [a, b] = [new ChainWriter(storeA, options), new ChainWriter(storeB, options)];
      const batch = (...types: string[]) => new Map([['t', types.map((type) => event(type))]]);
      await a.write(batch('a1', 'a2'));
      await b.write(batch('b1', 'b2')); // 3, its checkpoint, 5
      await a.write(batch('a3', 'a4')); // a's head is stale: re-chained onto 5
      await a.seal(); // signs what ends the chain
      await b.seal(); // finds the chain already signed: appends nothing
      await Promise.all([a.close(), b.close()]);
      const store = await reopen();
      const records = await collect(store, 't');
      expect(records.map((r) => (r.type === CHECKPOINT_TYPE ? `CP${(r.data as { seq: number }).seq}` : r.type))).toEqual(['a1', 'a2', 'b1', 'CP3', 'b2', 'a3', 'CP6', 'a4', 'CP8']);
      const report = await verifyStore(store, 't', key.publicKey);
      expect(report).toMatchObject({ ok: true, checkpoints: { count: 3, checked: true, last: { seq: 8 }, uncovered: 1 } });
      await store.close();
    });
  });
}
