import type { CallToolResult } from '../protocol/mcp.ts';

/**
 * Enforces `maxOutputBytes`: a larger result keeps as much of its text as fits, followed by a marker the model
 * can read. Structured content and non-text parts are dropped, since a cut-off version of them would be wrong.
 */
export function limitOutput(result: CallToolResult, maxBytes: number | undefined): { result: CallToolResult; truncated: boolean } {
  if (maxBytes === undefined) return { result, truncated: false };
  const size = Buffer.byteLength(JSON.stringify(result));
  if (size <= maxBytes) return { result, truncated: false };
  const text = (result.content ?? [])
    .map((part) => (part.type === 'text' ? String(part.text) : `[${String(part.type)} content omitted]`))
    .join('\n');
  const kept = truncateUtf8(text, Math.max(0, maxBytes - 200));
  const marker = `\n[gatehouse: output truncated by policy at ${maxBytes} bytes; the full result was ${size} bytes]`;
  return {
    result: { content: [{ type: 'text', text: kept + marker }], ...(result.isError ? { isError: true } : {}), ...(result._meta ? { _meta: result._meta } : {}) },
    truncated: true,
  };
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  // Back off to a character boundary so no replacement character appears.
  let end = maxBytes;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
