import { closeSync, openSync, writeSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import type { AuditWriter } from '../src/audit/chain-writer.ts';
import { chainEvents, recordLine } from '../src/protocol/audit-chain.ts';
import { GENESIS, type AuditEvent, type ChainHead } from '../src/protocol/audit-record.ts';

/**
 * The audit bench's baselines: the events chained onto the head the writer keeps and written with nothing else
 * (no lock, no check, no fsync, no head file). `appendFile` goes through Node's thread pool, as the store did
 * before it held its files open; `write` is one write(2) on a file held open, the floor for any store.
 */
export class BareWriter implements AuditWriter {
  private head: ChainHead = GENESIS;
  private fd: number | undefined;

  constructor(
    private readonly path: string,
    private readonly how: 'appendFile' | 'write',
  ) {}

  async write(batch: ReadonlyMap<string, readonly AuditEvent[]>): Promise<void> {
    for (const events of batch.values()) {
      const records = chainEvents(this.head, events);
      const data = records.map(recordLine).join('\n') + '\n';
      if (this.how === 'appendFile') await appendFile(this.path, data);
      else writeSync((this.fd ??= openSync(this.path, 'a')), data);
      const last = records[records.length - 1];
      this.head = { seq: last.seq, hash: last.hash };
    }
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
  }
}
