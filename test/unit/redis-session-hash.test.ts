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

  it('keeps budgets and loop-breaker entries in short texts that need no escaping, and reads them back', () => {
    const record: SessionRecord = {
      ...emptyRecord('s', 1),
      budgets: { spend: { calls: 3, outputBytes: 1200, upstreamMs: 45, tools: ['fs__read', 'web__fetch'] } },
      repeats: { 'loop fs__read 00ff': { times: [1_785_196_801_305, 1_785_196_801_400, 1_785_196_802_000], until: 1_785_197_402_000 } },
    };
    const { set } = fieldChanges(undefined, record);
    const fields = Object.fromEntries(set.flatMap((v, i) => (i % 2 === 0 ? [[v, set[i + 1]]] : [])));
    expect(fields['b:spend']).toBe('3,1200,45');
    expect(fields['bt:spend']).toBe('["fs__read","web__fetch"]');
    expect(fields['r:loop fs__read 00ff']).toBe([1_785_197_402_000, 600_000, 600, 95].join(','));
    expect(recordOfFields(['v', 'n.1', ...set])).toEqual({ record, version: 'n.1' });
  });

  it("writes a budget's tools only when they change", () => {
    const [first] = admit([undefined], { ...call(1), budgets: [{ ruleId: 'spend', per: 'session', distinctTools: 5 }] }, true).next;
    expect(fieldChanges(undefined, first!).set).toContain('bt:spend');
    const [second] = admit([first], { ...call(2), budgets: [{ ruleId: 'spend', per: 'session', distinctTools: 5 }] }, true).next;
    expect(fieldChanges(first, second!).set).not.toContain('bt:spend');
    const [third] = admit([second], { ...call(3, 'fs__write'), budgets: [{ ruleId: 'spend', per: 'session', distinctTools: 5 }] }, true).next;
    expect(fieldChanges(second, third!).set).toContain('bt:spend');
  });

  it('reads records written in the JSON layout, and moves a budget out of it whole when it changes', () => {
    const legacy = [
      'v', 'old.1', 'id', 's', 'startedAt', '1', 'calls', '2', 'tools', '["fs__read"]', 'riskTags', '[]', 'labels', '[]', 'approvals', '0',
      'b:spend', '{"calls":2,"outputBytes":10,"upstreamMs":3,"tools":["fs__read","fs__list"]}',
      'r:loop fs__read 00ff', '{"times":[1,2],"until":60002}',
    ];
    const read = recordOfFields(legacy)!;
    expect(read.record.budgets.spend).toEqual({ calls: 2, outputBytes: 10, upstreamMs: 3, tools: ['fs__read', 'fs__list'] });
    expect(read.record.repeats['loop fs__read 00ff']).toEqual({ times: [1, 2], until: 60_002 });
    const after: SessionRecord = { ...read.record, budgets: { spend: { ...read.record.budgets.spend, calls: 3 } } };
    const { set } = fieldChanges(read.record, after);
    const written = recordOfFields(['v', 'new.1', ...legacy.slice(2), ...set])!;
    expect(written.record.budgets.spend).toEqual({ calls: 3, outputBytes: 10, upstreamMs: 3, tools: ['fs__read', 'fs__list'] });
  });

  it('sends a loop-breaker entry whole as calls add to it and old times leave the window, and reads it back', () => {
    const repeat = (now: number): CallAdmission => ({ ...call(now), repeats: [{ ruleId: 'loop', limit: 1_000, windowMs: 30_000 }] });
    let record: SessionRecord | undefined;
    // Lists of 30 times, calls at the same ms, old times dropped.
    const times = [...Array.from({ length: 40 }, (_, i) => 1 + i * 1_000), 39_001, 39_002, 120_000, 120_500];
    for (const [i, now] of times.entries()) {
      const [next] = admit([record], repeat(now), true).next;
      const texts = (changes: string[]) => changes.filter((_, i) => i % 2 === 0 && changes[i].startsWith('r:')).map((f) => changes[changes.indexOf(f) + 1]);
      expect(texts(fieldChanges(record, next!).set)).toEqual(texts(fieldChanges(undefined, next!).set));
      expect(recordOfFields(['v', 'n', ...fieldChanges(undefined, next!).set])!.record.repeats).toEqual(next!.repeats);
      // The next call changes the record as this instance made it, or as it read it back.
      record = i % 2 === 0 ? next : recordOfFields(['v', 'n', ...fieldChanges(undefined, next!).set])!.record;
    }
  });

  it('keeps loop-breaker times that are not whole ms exactly', () => {
    const record: SessionRecord = { ...emptyRecord('s', 1), repeats: { k: { times: [1.5, 2], until: 60_002 }, j: { times: [3], until: 60_003.25 } } };
    expect(recordOfFields(['v', 'n', ...fieldChanges(undefined, record).set])!.record.repeats).toEqual(record.repeats);
  });
});
