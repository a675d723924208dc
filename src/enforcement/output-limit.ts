import type { CallToolResult } from '../protocol/mcp.ts';

/**
 * Enforces `maxOutputBytes`, counted as `outputBytes` counts: what the model is given, not the JSON around it. A
 * larger result keeps as much of its text as fits, followed by a marker the model can read, the two together
 * within the limit. Structured content and non-text parts are dropped, since a cut-off version of them would be
 * wrong.
 */
export function limitOutput(result: CallToolResult, maxBytes: number | undefined): { result: CallToolResult; truncated: boolean } {
  if (maxBytes === undefined) return { result, truncated: false };
  const size = outputBytes(result);
  if (size <= maxBytes) return { result, truncated: false };
  const text = (result.content ?? [])
    .map((part) => (part.type === 'text' ? String(part.text) : `[${String(part.type)} content omitted]`))
    .join('\n');
  const marker = `\n[gatehouse: output truncated by policy at ${maxBytes} bytes; the full result was ${size} bytes]`;
  const kept = truncateUtf8(text, Math.max(0, maxBytes - Buffer.byteLength(marker)));
  return {
    result: { content: [{ type: 'text', text: kept + marker }], ...(result.isError ? { isError: true } : {}), ...(result._meta ? { _meta: result._meta } : {}) },
    truncated: true,
  };
}

/**
 * The size of a result as the model receives it, in bytes: each text part's UTF-8; an image's, audio's or embedded
 * blob's decoded size (not its base64); an embedded resource's text; a resource link's URI; any other part as
 * JSON. Structured content counts as its JSON, and a client shows the model either it or the content, so the
 * larger of the two is the size. `_meta`, `isError` and the JSON-RPC envelope do not count.
 */
export function outputBytes(result: CallToolResult): number {
  let content = 0;
  for (const part of result.content ?? []) content += partBytes(part);
  if (result.structuredContent === undefined) return content;
  return Math.max(content, Buffer.byteLength(JSON.stringify(result.structuredContent)));
}

function partBytes(part: Record<string, unknown>): number {
  switch (part.type) {
    case 'text':
      return utf8Bytes(part.text);
    case 'image':
    case 'audio':
      return base64Bytes(part.data);
    case 'resource': {
      const resource = part.resource as { text?: unknown; blob?: unknown } | undefined;
      return typeof resource?.blob === 'string' ? base64Bytes(resource.blob) : utf8Bytes(resource?.text);
    }
    case 'resource_link':
      return utf8Bytes(part.uri);
    default:
      return Buffer.byteLength(JSON.stringify(part));
  }
}

const utf8Bytes = (value: unknown): number => (typeof value === 'string' ? Buffer.byteLength(value) : 0);
const base64Bytes = (value: unknown): number => (typeof value === 'string' ? Buffer.byteLength(value, 'base64') : 0);

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  // Back off to a character boundary so no replacement character appears.
  let end = maxBytes;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
