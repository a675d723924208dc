import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import { FileSinkCursors } from '../../adapters/file/sink-cursors.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { SinkForwarder } from '../../src/audit/sink-forwarder.ts';
import { GatewayError } from '../../src/errors.ts';
import type { AuditSinkSender } from '../../src/ports.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { silentLogger } from '../../src/log.ts';
import { waitFor } from '../helpers/gateway-harness.ts';
import { writeGeneratedLog } from '../helpers/audit-calls.ts';

// The forwarding loop over a real file chain, cursors and ledger locks; the sender (a port) is a test double
// that keeps what it accepted and can be made to refuse.

interface TestReceiver {
  /** The accepted batches, and which holder sent each. */
  batches: { by: string; records: AuditRecord[] }[];
  up: boolean;
  /** The sender a forwarder of `holder` uses. */
  as(holder: string): AuditSinkSender;
}

/** A receiver that accepts batches while `up`, and refuses them otherwise. */
function testReceiver(name = 'siem'): TestReceiver {
  const receiver: TestReceiver = {
    batches: [],
    up: true,
    as: (holder) => ({
      name,
      send: async (records) => {
        if (!receiver.up) throw new GatewayError('GH_ERR_AUDIT_SINK_FAILED', 'receiver down');
        receiver.batches.push({ by: holder, records: [...records] });
      },
    }),
  };
  return receiver;
}

describe('SinkForwarder', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
  });

  async function setUp(calls: number) {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-forwarder-'));
    await writeGeneratedLog(dataDir, calls, { interleave: false });
    const chains = new FileAuditStore(dataDir);
    const chain: AuditRecord[] = [];
    for await (const record of chains.read('default')) chain.push(record);
    const ledger = new FileJobLedger(dataDir);
    const sender = testReceiver();
    const forwarder = (holder: string) => {
      const f = new SinkForwarder({
        sender: sender.as(holder),
        chains,
        cursors: new FileSinkCursors(dataDir),
        lease: ledger,
        holder,
        clock: systemClock,
        log: silentLogger,
        batchSize: 10,
        pollIntervalMs: 10,
        timeoutMs: 1_000,
        retry: { initialMs: 5, maxMs: 20 },
      });
      stops.push(() => f.stop(0));
      return f;
    };
    return { dataDir, chain, sender, forwarder, chains };
  }

  const delivered = (sender: TestReceiver) => sender.batches.flatMap((b) => b.records);

  it('two forwarders of one sink: one holds the lease and sends; when it stops, the other goes on from its cursor with no gap', async () => {
    const { chain, sender, forwarder } = await setUp(30);
    const [a, b] = [forwarder('gw-a'), forwarder('gw-b')];
    a.start();
    await waitFor(() => sender.batches.length > 0, 'a first batch');
    b.start();
    sender.up = false; // hold the rest back while both run
    await new Promise((r) => setTimeout(r, 50));
    expect(new Set(sender.batches.map((x) => x.by))).toEqual(new Set(['gw-a']));
    expect(b.lag()).toEqual([]); // not the holder: it reports nothing
    await a.stop(0); // frees the lease
    sender.up = true;
    await waitFor(() => delivered(sender).length >= chain.length, 'the rest of the chain');
    expect(delivered(sender)).toEqual(chain);
    expect(sender.batches.at(-1)!.by).toBe('gw-b');
  });

  it('reports its lag while the receiver refuses, and none once it caught up', async () => {
    const { chain, sender, forwarder } = await setUp(10);
    sender.up = false;
    const f = forwarder('gw-a');
    f.start();
    // The age is known once the first batch was read (and refused); the generated log is from 2026-01-01.
    await waitFor(() => f.lag().some((l) => l.oldestSeconds > 0), 'the lag to show');
    expect(f.lag()).toEqual([{ sink: 'siem', tenant: 'default', records: chain.length, oldestSeconds: expect.any(Number) }]);
    sender.up = true;
    await waitFor(() => f.lag()[0]?.records === 0, 'the sink to catch up');
    expect(f.lag()).toEqual([{ sink: 'siem', tenant: 'default', records: 0, oldestSeconds: 0 }]);
    expect(delivered(sender)).toEqual(chain);
  });

  it('picks up a tenant whose chain appears while it runs', async () => {
    const { dataDir, chain, sender, forwarder, chains } = await setUp(3);
    forwarder('gw-a').start();
    await waitFor(() => delivered(sender).length === chain.length, 'the first tenant');
    await writeGeneratedLog(dataDir, 4, { tenant: 'acme', interleave: false });
    const acme: AuditRecord[] = [];
    for await (const record of chains.read('acme')) acme.push(record);
    await waitFor(() => delivered(sender).length === chain.length + acme.length, 'the new tenant');
    expect(delivered(sender).filter((r) => r.tenant === 'acme')).toEqual(acme);
  });
});
