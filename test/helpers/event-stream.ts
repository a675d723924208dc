/** One server-sent event: its name (`message` when unnamed) and its data lines joined. */
export interface StreamEvent {
  event: string;
  data: string;
}

/** Reads a text/event-stream body event by event (comments and `retry:` lines skipped). */
export function eventReader(body: ReadableStream<Uint8Array>): { next(): Promise<StreamEvent | undefined>; cancel(): Promise<void> } {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    async next() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
          if (data.length === 0) continue;
          const name = lines.find((l) => l.startsWith('event:'))?.slice(6).trim() ?? 'message';
          return { event: name, data: data.join('\n') };
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        buffer += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}
