import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/ports.ts';

/** What every Store adapter must do. `advance` moves the adapter's clock (or waits) by ms. */
export function runStoreContract(name: string, makeStore: () => Promise<Store> | Store, advance: (ms: number) => Promise<void>): void {
  describe(`Store contract: ${name}`, () => {
    it('sets, gets and deletes JSON values', async () => {
      const store = await makeStore();
      await store.set('ctx:1', { args: { a: [1, 'two'] } });
      expect(await store.get('ctx:1')).toEqual({ args: { a: [1, 'two'] } });
      await store.delete('ctx:1');
      expect(await store.get('ctx:1')).toBeUndefined();
      await store.close();
    });

    it('takes a value and deletes it with the other keys given, in one operation', async () => {
      const store = await makeStore();
      await store.set('res:2', { result: 'r' });
      await store.set('ctx:2', { args: {} });
      await store.set('ctx:3', 'kept');
      expect(await store.take('res:2', ['ctx:2'])).toEqual({ result: 'r' });
      expect(await store.get('res:2')).toBeUndefined();
      expect(await store.get('ctx:2')).toBeUndefined();
      expect(await store.get('ctx:3')).toBe('kept');
      expect(await store.take('res:missing', ['ctx:3'])).toBeUndefined();
      expect(await store.get('ctx:3')).toBeUndefined();
      await store.close();
    });

    it('expires keys after their TTL', async () => {
      const store = await makeStore();
      await store.set('res:1', 'v', { ttlMs: 100 });
      expect(await store.get('res:1')).toBe('v');
      await advance(150);
      expect(await store.get('res:1')).toBeUndefined();
      await store.close();
    });

    it('setIfAbsent claims a key exactly once, even when raced', async () => {
      const store = await makeStore();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.setIfAbsent('idem:k', i)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.setIfAbsent('idem:k', 'again')).toBe(false);
      await store.close();
    });

    it('claimAndGet claims a key exactly once, even when raced, and reads the other key with it', async () => {
      const store = await makeStore();
      await store.set('ctx:9', { args: { a: 1 } });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.claimAndGet('claim:9', `w${i}`, 'ctx:9', { ttlMs: 60_000 })));
      expect(results.filter((r) => r.claimed)).toHaveLength(1);
      expect(results.every((r) => JSON.stringify(r.value) === JSON.stringify({ args: { a: 1 } }))).toBe(true);
      expect(await store.get('claim:9')).toBe(`w${results.findIndex((r) => r.claimed)}`);
      expect(await store.claimAndGet('claim:10', 'w', 'ctx:missing')).toEqual({ claimed: true, value: undefined });
      expect(await store.claimAndGet('claim:10', 'w', 'ctx:missing')).toEqual({ claimed: false, value: undefined });
      await store.close();
    });

    it('lets an expired claim be taken again', async () => {
      const store = await makeStore();
      expect(await store.setIfAbsent('lock:x', 'a', { ttlMs: 50 })).toBe(true);
      await advance(100);
      expect(await store.setIfAbsent('lock:x', 'b', { ttlMs: 50 })).toBe(true);
      expect(await store.get('lock:x')).toBe('b');
      await store.close();
    });

    it('increment counts atomically, even when raced', async () => {
      const store = await makeStore();
      const counts = await Promise.all(Array.from({ length: 50 }, () => store.increment('rate:k', { ttlMs: 60_000 })));
      expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(await store.increment('rate:k')).toBe(51);
      expect(await store.increment('rate:other')).toBe(1);
      await store.close();
    });

    it('get reads a counter as its number, without counting (what a peek at a limit reads)', async () => {
      const store = await makeStore();
      expect(await store.get('rate:peek')).toBeUndefined();
      await store.increment('rate:peek', { ttlMs: 60_000 });
      await store.increment('rate:peek', { ttlMs: 60_000 });
      expect(await store.get('rate:peek')).toBe(2);
      expect(await store.get('rate:peek')).toBe(2);
      await store.close();
    });

    it('increment keeps the expiry of the first increment, then starts again', async () => {
      const store = await makeStore();
      expect(await store.increment('rate:w', { ttlMs: 100 })).toBe(1);
      await advance(60);
      expect(await store.increment('rate:w', { ttlMs: 100 })).toBe(2); // no sliding: still due at 100
      await advance(60);
      expect(await store.increment('rate:w', { ttlMs: 100 })).toBe(1);
      await store.close();
    });
  });
}
