import { describe, expect, it } from 'vitest';
import { RecentRecords } from '../../src/audit/recent-records.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { GENESIS, type AuditRecord } from '../../src/protocol/audit-record.ts';

const chain = (n: number): AuditRecord[] => chainEvents(GENESIS, Array.from({ length: n }, (_, i) => ({ tenant: 't', at: i, type: 'test', actor: 'a', data: { i } })));
const seqs = (records: AuditRecord[] | undefined) => records?.map((r) => r.seq);

describe('RecentRecords', () => {
  it('answers from the records appended in order, and leaves to the store what it does not hold', () => {
    const records = chain(10);
    const recent = new RecentRecords(100);
    recent.appended('t', records.slice(0, 4));
    recent.appended('t', records.slice(4, 7));
    expect(seqs(recent.from('t', 3, 3))).toEqual([3, 4, 5]);
    expect(seqs(recent.from('t', 6, 10))).toEqual([6, 7]);
    expect(recent.from('t', 8, 10)).toBeUndefined(); // not appended here (yet): the store knows
    expect(recent.from('other', 1, 10)).toBeUndefined();
  });

  it('starts a tenant’s tail anew after a gap (another writer appended), and keeps it bounded', () => {
    const records = chain(40);
    const recent = new RecentRecords(5);
    recent.appended('t', records.slice(0, 3));
    recent.appended('t', records.slice(5, 8)); // seqs 6-8: 4 and 5 came from elsewhere
    expect(recent.from('t', 1, 10)).toBeUndefined();
    expect(seqs(recent.from('t', 6, 10))).toEqual([6, 7, 8]);
    for (let i = 8; i < 40; i++) recent.appended('t', [records[i]]);
    expect(recent.from('t', 6, 10)).toBeUndefined(); // trimmed
    expect(seqs(recent.from('t', 36, 10))).toEqual([36, 37, 38, 39, 40]);
  });
});
