import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/protocol/jcs.ts';
import { digestOf } from '../../src/protocol/digest.ts';
import { UlidGenerator } from '../../src/protocol/ulid.ts';
import { classifyMessage } from '../../src/protocol/jsonrpc.ts';
import { bundleFromText } from '../../src/kernel/bundle.ts';
import { bundleText } from '../../bench/kernel.ts';

describe('JCS (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units and drops whitespace', () => {
    expect(canonicalize({ b: 1, a: [true, null, 'x'], 'é': 0, A: { z: 1, y: 2 } })).toBe('{"A":{"y":2,"z":1},"a":[true,null,"x"],"b":1,"é":0}');
  });
  it('sorts what is out of order deep inside a value that is otherwise in order, and leaves the value as it was', () => {
    const value = { a: { b: 1, c: 2 }, d: [1, { f: 1, e: [{ h: 1, g: 2 }] }], z: 'last' };
    const before = JSON.stringify(value);
    expect(canonicalize(value)).toBe('{"a":{"b":1,"c":2},"d":[1,{"e":[{"g":2,"h":1}],"f":1}],"z":"last"}');
    expect(JSON.stringify(value)).toBe(before);
    expect(canonicalize({ a: 1, b: { c: [2, 3] } })).toBe('{"a":1,"b":{"c":[2,3]}}');
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
    expect(() => canonicalize({ a: [Infinity] })).toThrow(TypeError);
    expect(() => canonicalize({ a: 1n })).toThrow(TypeError);
  });
  it('sorts keys that JavaScript orders first (array indices, __proto__) with the others, and writes what JSON.stringify skips as it does', () => {
    expect(canonicalize({ 10: 'ten', 2: 'two', b: 1, a: undefined, f: () => 1, '': 0 })).toBe('{"":0,"10":"ten","2":"two","b":1}');
    expect(canonicalize(JSON.parse('{"z":[1,{"0":null}],"__proto__":{"x":1}}'))).toBe('{"__proto__":{"x":1},"z":[1,{"0":null}]}');
    expect(canonicalize([undefined, () => 1, Symbol('s'), new Date(0), { toJSON: () => ({ b: 2, a: 1 }) }])).toBe('[null,null,null,"1970-01-01T00:00:00.000Z",{"a":1,"b":2}]');
    expect(canonicalize({ '\ud800': 'lone', é: '\u2028', '4294967295': 'no index', '01': 'nor this' })).toBe('{"01":"nor this","4294967295":"no index","é":"\u2028","\\ud800":"lone"}');
    expect([undefined, 'text', 1.5, true, null].map(canonicalize)).toEqual(['null', '"text"', '1.5', 'true', 'null']);
  });
  it("keeps a policy bundle's snapshot: the digest of its canonical content, as every earlier release computed it", () => {
    // 100 rules of the kernel bench; the value was computed by the key-by-key encoder that came before the sorted copy.
    expect(bundleFromText('bench.yaml', bundleText(5, 1)).snapshot).toBe('sha256:43acb315381af1be18e703ec2c34b18182b9bf42e89f984a138cd0f6cfc85f42');
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
