import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/protocol/jcs.ts';
import { digestOf } from '../../src/protocol/digest.ts';
import { UlidGenerator } from '../../src/protocol/ulid.ts';
import { classifyMessage } from '../../src/protocol/jsonrpc.ts';

describe('JCS (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units and drops whitespace', () => {
    expect(canonicalize({ b: 1, a: [true, null, 'x'], 'é': 0, A: { z: 1, y: 2 } })).toBe('{"A":{"y":2,"z":1},"a":[true,null,"x"],"b":1,"é":0}');
  });
  it('writes numbers in their shortest round-trip form', () => {
    expect(canonicalize([1e21, 0.1, -0, 1.0, 123456789012])).toBe('[1e+21,0.1,0,1,123456789012]');
  });
  it('gives equal digests to equal values whatever the key order', () => {
    expect(digestOf({ a: 1, b: { c: 2, d: 3 } })).toBe(digestOf({ b: { d: 3, c: 2 }, a: 1 }));
    expect(digestOf({ a: 1 })).not.toBe(digestOf({ a: 2 }));
  });
  it('refuses what JSON cannot carry', () => {
    expect(() => canonicalize(Number.NaN)).toThrow();
  });
});

describe('ULID', () => {
  it('is 26 Crockford base32 characters and sorts in creation order within one millisecond', () => {
    const gen = new UlidGenerator(() => 1_700_000_000_000);
    const ids = Array.from({ length: 100 }, () => gen.next());
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(100);
  });
});

describe('JSON-RPC classification', () => {
  it('tells requests, notifications, responses and invalid messages apart', () => {
    expect(classifyMessage({ jsonrpc: '2.0', id: 1, method: 'x' }).kind).toBe('request');
    expect(classifyMessage({ jsonrpc: '2.0', method: 'x' }).kind).toBe('notification');
    expect(classifyMessage({ jsonrpc: '2.0', id: 1, result: {} }).kind).toBe('response');
    expect(classifyMessage({ jsonrpc: '1.0', id: 1, method: 'x' })).toMatchObject({ kind: 'invalid', id: 1 });
    expect(classifyMessage({ jsonrpc: '2.0', id: 1, method: 'x', params: [1] }).kind).toBe('invalid');
    expect(classifyMessage([]).kind).toBe('invalid');
    expect(classifyMessage({ jsonrpc: '2.0', id: null, method: 'x' }).kind).toBe('invalid');
  });
});

describe('audit record hashing', () => {
  it('writes the same canonical text on the fast path as the generic JCS walk', async () => {
    const { canonicalRecord, chainEvents, hashRecord, recordLine } = await import('../../src/protocol/audit-chain.ts');
    const { GENESIS } = await import('../../src/protocol/audit-record.ts');
    const events = [
      { tenant: 'tenant "q"', at: 1.5, type: 'job.x', actor: 'ü\u2028', data: { z: [1, { b: 2, a: 1 }], a: null, u: undefined } },
      { tenant: 't', at: 2, type: 'job.y', actor: 'a', jobId: 'J', data: {} },
    ];
    const records = chainEvents(GENESIS, events as never);
    for (const [i, record] of records.entries()) {
      const { hash, ...rest } = record;
      expect(canonicalRecord(events[i] as never, record.seq, record.prev)).toBe(canonicalize(rest));
      expect(hashRecord(rest)).toBe(hash);
      expect(JSON.parse(recordLine(record))).toEqual(JSON.parse(JSON.stringify(record)));
    }
  });
});
