import { LineSplitter } from '../../src/protocol/line-splitter.ts';
import { GatewayError } from '../../src/errors.ts';

/** One server-sent event: its data (multi-line data joined with newlines), and its `id:` / `retry:` if any. */
export interface SseEvent {
  data: string;
  id?: string;
  /** The reconnection delay the server asks for (ms). */
  retry?: number;
}

/**
 * Reads a text/event-stream body and yields each event. An event with an `id:` and no data (a priming event)
 * is yielded too, with empty data, because its id is what a client resumes from. An event whose data passes
 * `maxBytes` is not kept: the read throws GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE (`data.bytes`: at least this many).
 */
export async function* readSseEvents(body: AsyncIterable<Buffer | string>, maxBytes = Number.POSITIVE_INFINITY): AsyncGenerator<SseEvent> {
  let oversized = 0;
  // Lines in linear time however the body is chunked (a large result is one long `data:` line).
  const lines = new LineSplitter(maxBytes, (line) => (oversized = line.bytes));
  let dataBytes = 0;
  let data: string[] = [];
  let id: string | undefined;
  let retry: number | undefined;
  const take = (): SseEvent | undefined => {
    const event = data.length > 0 || id !== undefined || retry !== undefined ? { data: data.join('\n'), ...(id === undefined ? {} : { id }), ...(retry === undefined ? {} : { retry }) } : undefined;
    data = [];
    dataBytes = 0;
    id = undefined;
    retry = undefined;
    return event;
  };
  for await (const chunk of body) {
    const pushed = lines.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    if (oversized > 0) throw tooLarge(oversized, maxBytes);
    for (const line of pushed) {
      if (line === '') {
        const event = take();
        if (event) yield event;
      } else if (line.startsWith('data:')) {
        const value = field(line, 5);
        dataBytes += Buffer.byteLength(value) + 1;
        if (dataBytes > maxBytes) throw tooLarge(dataBytes, maxBytes);
        data.push(value);
      } else if (line.startsWith('id:')) {
        id = field(line, 3);
      } else if (line.startsWith('retry:')) {
        const ms = Number(field(line, 6));
        if (Number.isInteger(ms) && ms >= 0) retry = ms;
      }
      // `event:` and comments carry nothing Gatehouse needs from an upstream.
    }
  }
  const last = take();
  if (last) yield last;
}

const tooLarge = (bytes: number, limit: number): GatewayError =>
  new GatewayError('GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE', `an event of at least ${bytes} bytes, over the limit of ${limit} bytes for one message from an upstream`, { data: { bytes, limit } });

const field = (line: string, at: number): string => line.slice(line.charAt(at) === ' ' ? at + 1 : at);
