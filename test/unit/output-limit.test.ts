// maxOutputBytes counts what the model is given (issue 10, item 14), not the serialised envelope: a result just
// under the limit passes whole, one just over is cut.
import { describe, expect, it } from 'vitest';
import { limitOutput, outputBytes } from '../../src/enforcement/output-limit.ts';
import type { CallToolResult } from '../../src/protocol/mcp.ts';

const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });
const base64Of = (bytes: number) => Buffer.alloc(bytes, 7).toString('base64');

describe('maxOutputBytes', () => {
  it('passes a text exactly at the limit whole, and cuts one a byte over', () => {
    const at = text('é'.repeat(500)); // 1,000 bytes of UTF-8
    expect(limitOutput(at, 1000)).toEqual({ result: at, truncated: false });
    const over = limitOutput(text(`${'é'.repeat(500)}x`), 1000);
    expect(over.truncated).toBe(true);
    expect(outputBytes(over.result)).toBeLessThanOrEqual(1000);
    expect(String(over.result.content[0].text)).toMatch(/output truncated by policy at 1000 bytes; the full result was 1001 bytes/);
  });

  it('counts the text of every part, not the JSON around it', () => {
    const parts: CallToolResult = { content: [{ type: 'text', text: 'a'.repeat(600) }, { type: 'text', text: '"\n'.repeat(200) }], _meta: { big: 'm'.repeat(5000) } };
    expect(outputBytes(parts)).toBe(1000);
    expect(limitOutput(parts, 1000).truncated).toBe(false);
  });

  it('counts images, audio and embedded blobs by their decoded size, resources by their text, links by their URI', () => {
    const result: CallToolResult = {
      content: [
        { type: 'image', data: base64Of(300), mimeType: 'image/png' },
        { type: 'audio', data: base64Of(301), mimeType: 'audio/wav' },
        { type: 'resource', resource: { uri: 'file:///a', blob: base64Of(302) } },
        { type: 'resource', resource: { uri: 'file:///b', text: 'é'.repeat(40) } },
        { type: 'resource_link', uri: 'file:///c/d', name: 'd' },
      ],
    };
    expect(outputBytes(result)).toBe(300 + 301 + 302 + 80 + 'file:///c/d'.length);
    expect(limitOutput(result, outputBytes(result)).truncated).toBe(false);
    expect(limitOutput(result, outputBytes(result) - 1).truncated).toBe(true);
  });

  it('counts structured content as JSON, and only the larger of it and the content (a client shows the model one)', () => {
    const data = { rows: ['x'.repeat(480)] }; // {"rows":["x…"]}: 493 bytes
    const both: CallToolResult = { content: [{ type: 'text', text: JSON.stringify(data) }], structuredContent: data };
    expect(outputBytes(both)).toBe(493);
    expect(limitOutput(both, 493).truncated).toBe(false);
    const structuredOnly: CallToolResult = { content: [], structuredContent: data };
    expect(limitOutput(structuredOnly, 492).truncated).toBe(true);
  });
});
