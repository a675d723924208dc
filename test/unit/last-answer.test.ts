// The kernel's readers that keep their last answer (src/kernel/last-answer.ts): the rules of one decision read the
// same argument once, and a reading shared that way cannot be changed by one of them.
import { describe, expect, it } from 'vitest';
import { keepingLastReading } from '../../src/kernel/last-answer.ts';
import { readPath } from '../../src/kernel/paths.ts';
import { readUrl } from '../../src/kernel/hosts.ts';

describe('keepingLastReading', () => {
  it('reads a text once while it is the last one, and again after another', () => {
    let reads = 0;
    const read = keepingLastReading((text: string) => ({ length: text.length, n: ++reads }));
    expect(read('abc')).toBe(read('abc'));
    expect(reads).toBe(1);
    read('de');
    expect(read('abc').n).toBe(3);
  });

  it('throws the same error again for the same text, and a frozen reading', () => {
    const failure = new Error('unreadable');
    const read = keepingLastReading((text: string) => {
      if (text === 'bad') throw failure;
      return { forms: [text] };
    });
    expect(() => read('bad')).toThrow(failure);
    expect(() => read('bad')).toThrow(failure);
    expect(Object.isFrozen(read('ok'))).toBe(true);
  });

  it('keeps the path and URL readers as they were: the same forms, host and coded errors', () => {
    expect(readPath('/a/../b').forms).toEqual(['/b']);
    expect(Object.isFrozen(readPath('/a/../b').forms)).toBe(true);
    expect(readUrl('https://Example.COM/x').host).toBe('example.com');
    expect(() => readUrl('https://a@b@c/')).toThrow(/more than one @/);
    expect(() => readUrl('https://a@b@c/')).toThrow(/more than one @/);
  });
});
