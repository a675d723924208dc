// The stdio framing (issue 10, item 13): lines in linear time however the bytes are chunked, and a line over
// the limit skipped at once, reported with enough of it to tell whose message it was.
import { StringDecoder } from 'node:string_decoder';
import { afterEach, describe, expect, it } from 'vitest';
import { LineSplitter, type OversizedLine } from '../../src/protocol/line-splitter.ts';
import { readOversizedMessage } from '../../src/protocol/oversized-message.ts';
import { readSseEvents } from '../../adapters/mcp/sse-reader.ts';

/** Feeds `text` to a splitter in chunks of `size` bytes; returns the lines and the overflows reported. */
function split(text: string | Buffer, size: number, maxBytes = 1 << 20): { lines: string[]; overflows: OversizedLine[] } {
  const overflows: OversizedLine[] = [];
  const splitter = new LineSplitter(maxBytes, (line) => overflows.push(line));
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += size) lines.push(...splitter.push(bytes.subarray(i, i + size)));
  return { lines, overflows };
}

describe('LineSplitter', () => {
  it('gives the same lines at any chunk boundary, multi-byte characters and \\r\\n included', () => {
    const text = 'héllo wörld\r\n{"emoji":"😀"}\n\nlast line\n';
    for (const size of [1, 2, 3, 5, 7, 64, 1000]) {
      expect(split(text, size).lines, `chunks of ${size}`).toEqual(['héllo wörld', '{"emoji":"😀"}', '', 'last line']);
    }
  });

  it('keeps an unfinished line until its newline arrives', () => {
    const splitter = new LineSplitter(100);
    expect(splitter.push(Buffer.from('{"a":'))).toEqual([]);
    expect(splitter.push(Buffer.from('1}\n{"b"'))).toEqual(['{"a":1}']);
    expect(splitter.push(Buffer.from(':2}\n'))).toEqual(['{"b":2}']);
  });

  it('counts the limit in bytes, delivers a line exactly at it, and skips a longer one whole', () => {
    expect(split('ab\n', 1, 2).lines).toEqual(['ab']);
    // "éé" is 2 characters but 4 bytes.
    const { lines, overflows } = split('éé\nok\n', 1, 3);
    expect(lines).toEqual(['ok']);
    expect(overflows).toEqual([{ head: 'éé', tail: 'éé', bytes: 4 }]);
  });

  it('reports an over-limit line once, when it ends, with its head, tail and size; the lines around it pass', () => {
    const big = `{"result":{"text":"${'x'.repeat(10_000)}"},"jsonrpc":"2.0","id":42}`;
    for (const size of [1, 100, 4096, 1 << 20]) {
      const { lines, overflows } = split(`{"id":1}\n${big}\n{"id":2}\n`, size, 1000);
      expect(lines, `chunks of ${size}`).toEqual(['{"id":1}', '{"id":2}']);
      expect(overflows).toHaveLength(1);
      expect(overflows[0].bytes).toBe(Buffer.byteLength(big));
      expect(overflows[0].head).toBe(big.slice(0, 256));
      expect(overflows[0].tail).toBe(big.slice(-256));
    }
  });

  it('reports an over-limit line that ends at a chunk boundary, and one ended by \\r\\n', () => {
    const splitter = new LineSplitter(4, (line) => overflows.push(line));
    const overflows: OversizedLine[] = [];
    expect(splitter.push(Buffer.from('abcdef'))).toEqual([]);
    expect(overflows).toEqual([]);
    expect(splitter.push(Buffer.from('gh\r\n'))).toEqual([]);
    expect(overflows).toEqual([{ head: 'abcdefgh\r', tail: 'abcdefgh', bytes: 9 }]);
    expect(splitter.push(Buffer.from('ok\n'))).toEqual(['ok']);
  });
});

describe('LineSplitter work', () => {
  // The work done on the bytes, metered at the primitives that scan or copy them. A splitter that re-reads its
  // unfinished line on every chunk (as the one before issue 10 did) does work quadratic in the line.
  let work = 0;
  const restore: (() => void)[] = [];
  function meter<T extends object, K extends keyof T>(owner: T, name: K, size: (self: unknown, args: unknown[]) => number): void {
    const original = owner[name] as unknown as (...args: unknown[]) => unknown;
    (owner as Record<K, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
      work += size(this, args);
      return original.apply(this, args);
    };
    restore.push(() => ((owner as Record<K, unknown>)[name] = original));
  }
  afterEach(() => {
    for (const undo of restore.splice(0)) undo();
  });

  it('stays linear in the bytes for a large line in many small chunks', () => {
    const line = `{"result":{"text":"${'y'.repeat(4_000_000)}"},"id":7}`;
    const bytes = Buffer.from(`${line}\n`);
    meter(String.prototype, 'split', (self) => String(self).length);
    meter(String.prototype, 'indexOf', (self) => String(self).length);
    meter(Buffer.prototype, 'indexOf', (self, args) => (self as Buffer).length - Number(args[1] ?? 0));
    meter(Buffer.prototype, 'toString', (self) => (self as Buffer).length);
    meter(Buffer, 'concat', (_, args) => (args[0] as Buffer[]).reduce((n, b) => n + b.length, 0));
    meter(StringDecoder.prototype, 'write', (_, args) => (args[0] as Buffer).length);
    meter(Array.prototype, 'join', (self) => (self as unknown[]).reduce<number>((n, item) => n + String(item).length, 0));
    const splitter = new LineSplitter(64 << 20);
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 1024) out.push(...splitter.push(bytes.subarray(i, i + 1024)));
    for (const undo of restore.splice(0)) undo();
    expect(out).toEqual([line]);
    expect(work).toBeLessThan(4 * bytes.length);
  });

  it("stays linear for a large event on an HTTP upstream's SSE stream", async () => {
    const data = `{"result":{"text":"${'y'.repeat(4_000_000)}"},"id":7}`;
    const bytes = Buffer.from(`id: 1\ndata: ${data}\n\n`);
    async function* chunks() {
      for (let i = 0; i < bytes.length; i += 1024) yield bytes.subarray(i, i + 1024);
    }
    meter(String.prototype, 'split', (self) => String(self).length);
    meter(String.prototype, 'indexOf', (self) => String(self).length);
    meter(Buffer.prototype, 'indexOf', (self, args) => (self as Buffer).length - Number(args[1] ?? 0));
    meter(Buffer, 'concat', (_, args) => (args[0] as Buffer[]).reduce((n, b) => n + b.length, 0));
    meter(StringDecoder.prototype, 'write', (_, args) => (args[0] as Buffer).length);
    meter(TextDecoder.prototype, 'decode', (_, args) => (args[0] as Buffer | undefined)?.length ?? 0);
    meter(Array.prototype, 'join', (self) => (self as unknown[]).reduce<number>((n, item) => n + String(item).length, 0));
    const events = [];
    for await (const event of readSseEvents(chunks())) events.push(event);
    for (const undo of restore.splice(0)) undo();
    expect(events).toEqual([{ id: '1', data }]);
    // A few passes per byte (decoding, joining the line, joining the event's data): linear. Re-scanning a growing
    // buffer, as the reader did before, is about 2,000 passes per byte at this size.
    expect(work).toBeLessThan(10 * bytes.length);
  });
});

describe('readOversizedMessage', () => {
  const read = (message: string) => {
    const { overflows } = split(`${message}\n`, 4096, 1000);
    return readOversizedMessage(overflows[0]);
  };
  const big = JSON.stringify({ text: 'z'.repeat(5000), nested: { id: 99, method: 'inner', jsonrpc: '2.0' } });

  it('reads the id of a response with its id last (as the SDKs write) or first', () => {
    expect(read(`{"result":${big},"jsonrpc":"2.0","id":7}`)).toEqual({ hasMethod: false, id: 7 });
    expect(read(`{"jsonrpc":"2.0","id":"a\\"b","result":${big}}`)).toEqual({ hasMethod: false, id: 'a"b' });
    expect(read(`{"id":8,"jsonrpc":"2.0","error":{"code":1,"message":"m","data":${big}}}`)).toEqual({ hasMethod: false, id: 8 });
    expect(read(`{"jsonrpc":"2.0","result":${big},"id":9,"jsonrpc":"2.0"}`)).toEqual({ hasMethod: false, id: 9 });
  });

  it('tells a request or notification from a response', () => {
    expect(read(`{"method":"tools/call","params":${big},"jsonrpc":"2.0","id":3}`)).toEqual({ hasMethod: true, id: 3 });
    expect(read(`{"jsonrpc":"2.0","id":4,"method":"sampling/createMessage","params":${big}}`)).toEqual({ hasMethod: true, id: 4 });
    expect(read(`{"params":${big},"method":"notifications/message","jsonrpc":"2.0"}`)).toEqual({ hasMethod: true, id: undefined });
  });

  it('reads no id from inside the message', () => {
    expect(read(`{"result":{"a":${big},"id":5}}`).id).toBeUndefined();
    expect(read(`{"result":"${'q'.repeat(3000)},\\"id\\":6"}`).id).toBeUndefined();
    expect(read(`{"result":[${big},{"id":5}]}`).id).toBeUndefined();
  });
});
