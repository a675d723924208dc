import { describe, expect, it } from 'vitest';
import type { SinkCursors } from '../../src/ports.ts';

/**
 * The contract of the audit sinks' cursors, run against each adapter: `make` opens fresh cursors and `reopen`
 * opens the same ones again, as a restarted gateway (or another replica) would.
 */
export function runSinkCursorsContract(name: string, make: () => Promise<{ cursors: SinkCursors; reopen: () => Promise<SinkCursors> }>): void {
  describe(`SinkCursors contract: ${name}`, () => {
    it('starts at 0, keeps a cursor per sink and tenant, and keeps them across a reopen', async () => {
      const { cursors, reopen } = await make();
      expect(await cursors.get('siem', 'default')).toBe(0);
      await cursors.set('siem', 'default', 12);
      await cursors.set('siem', 'acme', 3);
      await cursors.set('otel', 'default', 40);
      expect([await cursors.get('siem', 'default'), await cursors.get('siem', 'acme'), await cursors.get('otel', 'default')]).toEqual([12, 3, 40]);
      await cursors.close();
      const again = await reopen();
      expect([await again.get('siem', 'default'), await again.get('siem', 'acme'), await again.get('otel', 'default'), await again.get('otel', 'acme')]).toEqual([12, 3, 40, 0]);
      await again.close();
    });

    it('never moves a cursor back (a forwarder that lost its lease writes late)', async () => {
      const { cursors, reopen } = await make();
      await cursors.set('siem', 'default', 20);
      await cursors.set('siem', 'default', 7);
      expect(await cursors.get('siem', 'default')).toBe(20);
      await cursors.close();
      const again = await reopen();
      expect(await again.get('siem', 'default')).toBe(20);
      await again.close();
    });
  });
}
