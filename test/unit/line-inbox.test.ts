// Large lines are handed on in turns of their own, and no line overtakes another (issue 10, item 13).
import { describe, expect, it } from 'vitest';
import { LineInbox } from '../../src/protocol/line-inbox.ts';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('LineInbox', () => {
  it('hands small lines on at once, a large one in a later turn, and keeps the order', async () => {
    const seen: string[] = [];
    const inbox = new LineInbox((line) => seen.push(line.length > 10 ? 'LARGE' : line), 10);
    inbox.push('a');
    inbox.push('x'.repeat(11));
    inbox.push('b'); // behind the large line: it waits too
    expect(seen).toEqual(['a']);
    await nextTurn();
    expect(seen).toEqual(['a', 'LARGE']);
    inbox.push('c'); // while b still waits
    await nextTurn();
    expect(seen).toEqual(['a', 'LARGE', 'b', 'c']);
    inbox.push('d');
    expect(seen).toEqual(['a', 'LARGE', 'b', 'c', 'd']);
  });

  it('gives each of several large lines a turn of its own', async () => {
    const seen: number[] = [];
    const inbox = new LineInbox((line) => seen.push(line.length), 10);
    for (const n of [20, 30, 40]) inbox.push('x'.repeat(n));
    const turns: number[][] = [];
    for (let i = 0; i < 3; i++) {
      await nextTurn();
      turns.push([...seen]);
    }
    expect(turns).toEqual([[20], [20, 30], [20, 30, 40]]);
  });
});
