// The Redis session record as hash fields: an update sends only what it changed, and the fields read back are the record.
import { describe, expect, it } from 'vitest';
import { fieldChanges, recordOfFields } from '../../adapters/redis/session-hash.ts';
import { admit, emptyRecord, type CallAdmission } from '../../src/session/admission.ts';
import type { SessionRecord } from '../../src/protocol/session-record.ts';

const call = (now: number, tool = 'fs__read'): CallAdmission => ({
  sessionKey: 's',
  tool,
  toolCall: true,
  argsDigest: 'sha256:00ff',
  riskTags: ['reads'],
  approved: false,
  now,
  repeats: [{ ruleId: 'loop', limit: 5, windowMs: 60_000 }],
  budgets: [{ ruleId: 'spend', per: 'session', calls: 100 }],
});

const fieldsOf = (record: SessionRecord, version = 'v1') => {
  const { set } = fieldChanges(undefined, record);
  return ['v', version, ...set];
};

describe('a session record as Redis hash fields', () => {
  it('reads back every field it was written as, with its version', () => {
    const [first] = admit([undefined], call(1), true).next;
    const record: SessionRecord = { ...first!, client: { name: 'c', version: '1' }, labels: [{ name: 'private-data', jobId: 'J', by: 'r', at: 1 }] };
    expect(recordOfFields(fieldsOf(record, 'n.3'))).toEqual({ record, version: 'n.3' });
    expect(recordOfFields([])).toBeUndefined();
  });

  it("sends only the fields a call changed: the counts, the budget and the loop breaker's entry, not the lists it left alone", () => {
    const [first] = admit([undefined], call(1), true).next;
    const [second] = admit([first], call(2), true).next;
    const { set, del } = fieldChanges(first, second!);
    expect(set.filter((_, i) => i % 2 === 0).sort()).toEqual(['b:spend', 'calls', expect.stringMatching(/^r:loop fs__read /)]);
    expect(del).toEqual([]);
  });

  it('deletes the loop-breaker entries the change forgot, and a client that went away', () => {
    const before: SessionRecord = { ...emptyRecord('s', 1), client: { name: 'c', version: '1' }, repeats: { old: { times: [1], until: 2 }, kept: { times: [1], until: 99 } } };
    const after: SessionRecord = { ...before, client: undefined, repeats: { kept: before.repeats.kept } };
    delete after.client;
    expect(fieldChanges(before, after)).toEqual({ set: [], del: ['client', 'r:old'] });
  });
});
