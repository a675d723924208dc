import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** An upstream's answer to a POST: a JSON (or error) body read whole, or an SSE stream to read as it comes. */
export interface PostAnswer {
  statusCode: number;
  /** Lower-cased names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** The whole body, or how many bytes it had when it passed the limit (it was not read further). */
  text?: string | { bytes: number };
  /** A text/event-stream body: read it, or destroy it to drop the exchange. */
  stream?: Readable;
}

/** A POST in flight: its answer, and how to drop it (before or after the answer began). */
export interface PostExchange {
  answer: Promise<PostAnswer>;
  abort(reason: Error): void;
}

/**
 * One POST through an undici dispatcher, its answer read by a handler of our own rather than `undici.request()`:
 * per call that saves a response Readable, its async iteration, an AbortController and a header object parsed
 * from every raw header, which was the difference between an HTTP upstream's CPU per call and a stdio one's. Only
 * an SSE answer gets a stream (with backpressure). The handler speaks undici's dispatch protocol (onConnect,
 * onHeaders, onData, onComplete, onError), the one its own request() uses.
 */
export function post(dispatcher: Dispatcher, options: { origin: string; path: string; headers: Record<string, string>; body: string }, maxBytes: number): PostExchange {
  let abortNow: ((reason: Error) => void) | undefined;
  let dropped: Error | undefined;
  let settle!: { resolve(answer: PostAnswer): void; reject(err: Error): void };
  const answer = new Promise<PostAnswer>((resolve, reject) => (settle = { resolve, reject }));
  let statusCode = 0;
  let headers: Record<string, string> = {};
  let chunks: Buffer[] | undefined;
  let bytes = 0;
  let stream: Readable | undefined;
  let resumeReading: (() => void) | undefined;
  let ended = false;
  /** Drops the exchange: at once if it is connected, else as soon as it is; nothing once it has ended. */
  const drop = (reason: Error) => {
    if (dropped || ended) return;
    dropped = reason;
    abortNow?.(reason);
  };

  const handler: Dispatcher.DispatchHandler = {
    onConnect(abort) {
      abortNow = abort;
      if (dropped) abort(dropped);
    },
    onHeaders(status, rawHeaders, resume) {
      statusCode = status;
      headers = headerRecord(rawHeaders);
      if (status < 300 && (headers['content-type'] ?? '').includes('text/event-stream')) {
        resumeReading = resume;
        stream = new Readable({
          read: () => resumeReading?.(),
          destroy: (err, callback) => {
            if (!ended) drop(err ?? new Error('the response stream was closed'));
            callback(err);
          },
        });
        settle.resolve({ statusCode, headers, stream });
        return true;
      }
      chunks = [];
      return true;
    },
    onData(chunk) {
      if (stream) return stream.push(chunk);
      bytes += chunk.length;
      if (bytes > maxBytes) {
        chunks = undefined;
        settle.resolve({ statusCode, headers, text: { bytes } });
        drop(new Error('over the message limit'));
        return false;
      }
      chunks?.push(chunk);
      return true;
    },
    onComplete() {
      ended = true;
      if (stream) return void stream.push(null);
      if (chunks) settle.resolve({ statusCode, headers, text: Buffer.concat(chunks, bytes).toString('utf8') });
    },
    onError(err) {
      ended = true;
      if (stream) stream.destroy(err);
      else settle.reject(err);
    },
  };
  dispatcher.dispatch({ origin: options.origin, path: options.path, method: 'POST', headers: options.headers, body: options.body }, handler);
  return { answer, abort: drop };
}

/** The raw header list undici hands over ([name, value, name, value …] as Buffers) as a record. */
function headerRecord(raw: Buffer[] | string[] | null): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!raw) return headers;
  for (let i = 0; i + 1 < raw.length; i += 2) headers[raw[i].toString().toLowerCase()] = raw[i + 1].toString();
  return headers;
}
