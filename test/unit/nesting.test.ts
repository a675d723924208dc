// Deep nesting (issue 10, item 14): refused where a message enters, and never a stack overflow in what walks
// values (JCS digests), whatever the depth.
import { describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH, nestedDeeperThan } from '../../src/protocol/nesting.ts';
import { canonicalize } from '../../src/protocol/jcs.ts';
import { digestOf } from '../../src/protocol/digest.ts';

/** A value nested `levels` deep, alternating objects and arrays, built without recursion. */
function nested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { a: value };
  return value;
}

describe('nestedDeeperThan', () => {
  it('counts objects and arrays, the value itself level 1', () => {
    expect(nestedDeeperThan('text', 0)).toBe(false);
    expect(nestedDeeperThan({}, 1)).toBe(false);
    expect(nestedDeeperThan({}, 0)).toBe(true);
    expect(nestedDeeperThan(nested(MAX_NESTING_DEPTH))).toBe(false);
    expect(nestedDeeperThan(nested(MAX_NESTING_DEPTH + 1))).toBe(true);
    expect(nestedDeeperThan({ wide: Array.from({ length: 1000 }, () => ({ x: [1, 2] })), deep: nested(10) }, 12)).toBe(false);
  });

  it('reads a million levels without overflowing the stack', () => {
    expect(nestedDeeperThan(nested(1_000_000))).toBe(true);
  });
});

describe('JCS on deep values', () => {
  it('encodes values nested up to its guard, and refuses deeper ones with a coded error, not a stack overflow', () => {
    expect(canonicalize(nested(1000))).toContain('"leaf"');
    for (const depth of [1001, 100_000]) {
      expect(() => canonicalize(nested(depth))).toThrow(expect.objectContaining({ code: 'GH_ERR_NESTING_TOO_DEEP' }));
      expect(() => digestOf(nested(depth))).toThrow(expect.objectContaining({ code: 'GH_ERR_NESTING_TOO_DEEP' }));
    }
  });
});
