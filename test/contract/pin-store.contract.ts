import { describe, expect, it } from 'vitest';
import type { PinStore, ToolPin } from '../../src/ports.ts';

const pin = (server: string, tool: string, digest: string, extra: Partial<ToolPin> = {}): ToolPin => ({
  server,
  tool,
  digest,
  definition: { name: tool, description: digest },
  pinnedAt: 1,
  pinnedBy: 'first-seen',
  ...extra,
});

/** What every PinStore adapter keeps: pins by upstream and tool, each replaced whole, shared by every store opened on the same place. */
export function runPinStoreContract(name: string, open: () => Promise<{ store: PinStore; again: () => Promise<PinStore> }>): void {
  describe(`PinStore contract: ${name}`, () => {
    it('is empty at first, and gives back what was put, by upstream and tool', async () => {
      const { store } = await open();
      expect(await store.list()).toEqual([]);
      expect(await store.get('a', 't')).toBeUndefined();
      await store.put([pin('a', 't', 'sha256:1'), pin('b', 't', 'sha256:2')]);
      expect(await store.get('a', 't')).toEqual(pin('a', 't', 'sha256:1'));
      expect(await store.get('b', 't')).toEqual(pin('b', 't', 'sha256:2'));
      expect((await store.list()).map((p) => `${p.server}/${p.tool}`).sort()).toEqual(['a/t', 'b/t']);
    });

    it('replaces a tool’s pin whole, leaving the others', async () => {
      const { store } = await open();
      await store.put([pin('a', 't', 'sha256:1'), pin('a', 'u', 'sha256:3')]);
      const changed = pin('a', 't', 'sha256:1', { changed: { digest: 'sha256:9', definition: { name: 't' }, seenAt: 2 } });
      await store.put([changed]);
      expect(await store.get('a', 't')).toEqual(changed);
      await store.put([pin('a', 't', 'sha256:9')]);
      expect((await store.get('a', 't'))?.changed).toBeUndefined();
      expect(await store.get('a', 'u')).toEqual(pin('a', 'u', 'sha256:3'));
    });

    it('shares pins with another store opened on the same place (another process: the CLI)', async () => {
      const { store, again } = await open();
      await store.put([pin('a', 't', 'sha256:1')]);
      const other = await again();
      expect(await other.get('a', 't')).toEqual(pin('a', 't', 'sha256:1'));
      await other.put([pin('a', 't', 'sha256:2')]);
      expect((await store.get('a', 't'))?.digest).toBe('sha256:2');
    });

    it('keeps every pin of concurrent writes', async () => {
      const { store, again } = await open();
      const other = await again();
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).put([pin('a', `t${i}`, `sha256:${i}`)])));
      expect(await store.list()).toHaveLength(20);
    });
  });
}
