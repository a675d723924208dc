import { describe, expect, it } from 'vitest';
import { compileArgumentCheck } from '../../src/call/argument-validator.ts';
import { namespacedName, NAME_PATTERN } from '../../src/call/tool-names.ts';
import { limitOutput, outputBytes } from '../../src/enforcement/output-limit.ts';
import { previewArguments } from '../../src/approvals/preview.ts';
import { ToolCatalog } from '../../src/call/catalog.ts';
import { silentLogger } from '../../src/log.ts';
import type { Upstream } from '../../src/ports.ts';
import type { CallToolResult } from '../../src/protocol/mcp.ts';

describe('tool names', () => {
  it('stay inside what LLM APIs accept, and distinct', () => {
    expect(namespacedName('fs', 'read_file')).toBe('fs__read_file');
    const odd = namespacedName('fs', 'read.file/v2');
    const long = namespacedName('server', 'x'.repeat(80));
    const long2 = namespacedName('server', 'x'.repeat(81));
    for (const name of [odd, long, long2]) expect(name).toMatch(NAME_PATTERN);
    expect(long).not.toBe(long2);
    expect(odd).not.toBe(namespacedName('fs', 'read_file_v2'));
  });
});

describe('argument validation', () => {
  const check = compileArgumentCheck({
    type: 'object',
    properties: { path: { type: 'string' }, opts: { type: 'object', properties: { depth: { type: 'integer' } } } },
    required: ['path'],
    additionalProperties: false,
  })!;
  it('names the offending field', () => {
    expect(check({ path: '/x' })).toBeUndefined();
    expect(check({})).toMatch(/^path: /);
    expect(check({ path: 3 })).toMatch(/^path: must be string/);
    expect(check({ path: 'a', opts: { depth: 'deep' } })).toMatch(/^opts\.depth: /);
    expect(check({ path: 'a', mode: 1 })).toMatch(/^mode: is not an allowed property/);
  });
});

describe('output limit', () => {
  it('truncates with a marker the model can read, and leaves small results alone', () => {
    const small = { content: [{ type: 'text', text: 'ok' }] };
    expect(limitOutput(small, 1000)).toEqual({ result: small, truncated: false });
    const { result, truncated } = limitOutput({ content: [{ type: 'text', text: 'é'.repeat(5000) }], structuredContent: { a: 1 } }, 1000);
    expect(truncated).toBe(true);
    expect(outputBytes(result)).toBeLessThanOrEqual(1000); // what the model is given, the marker included
    expect(String(result.content[0].text)).toMatch(/output truncated by policy at 1000 bytes/);
    expect(String(result.content[0].text)).not.toContain('\uFFFD');
    expect(result.structuredContent).toBeUndefined();
  });
});

describe('argument preview', () => {
  it('masks values under secret-looking keys', () => {
    expect(previewArguments({ path: '/a', apiKey: 'k', nested: { password: 'p' } })).toBe('{"path":"/a","apiKey":"[redacted]","nested":{"password":"[redacted]"}}');
  });
});

describe('trace context', () => {
  it('takes the trace id of a valid W3C traceparent, and nothing else', async () => {
    const { traceIdOf } = await import('../../src/protocol/trace-context.ts');
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceIdOf('garbage')).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
  });

  it('passes on the span it is given, and a client’s own context as it came when tracing is off; makes none up', async () => {
    const { parentContextOf, withTraceContext } = await import('../../src/protocol/trace-context.ts');
    const { noTracing } = await import('../../src/ports.ts');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const underClient = noTracing.tracer.startSpan('x', {}, parentContextOf({ traceparent, tracestate: 'a=1' }));
    expect(withTraceContext({ other: 1, traceparent, tracestate: 'a=1' }, underClient)).toEqual({ other: 1, traceparent, tracestate: 'a=1' });
    const orphan = noTracing.tracer.startSpan('x', {}, parentContextOf(undefined));
    const meta = { other: 1 };
    expect(withTraceContext(meta, orphan)).toBe(meta);
    expect(withTraceContext(undefined, orphan)).toBeUndefined();
    // Version ff and an all-zero span id are not a parent: the invalid value passes through untouched.
    for (const bad of ['ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01']) {
      const span = noTracing.tracer.startSpan('x', {}, parentContextOf({ traceparent: bad }));
      expect(withTraceContext({ traceparent: bad }, span)).toEqual({ traceparent: bad });
    }
  });
});

describe('a tool of an upstream that never listed its tools', () => {
  const down = (name: string) => ({ name, state: 'down', failure: { message: 'process exited (code 3)', stderr: ['NOTES_DIR is not set'] } }) as unknown as Upstream;
  const catalog = (unprefixed: string[]) => {
    const upstreams = new Map([['notes', down('notes')], ['files', down('files')]]);
    return new ToolCatalog(silentLogger, (s) => !unprefixed.includes(s), undefined, (s) => upstreams.get(s), () => upstreams.keys());
  };
  const codeOf = (result: CallToolResult | undefined) => (result?._meta?.['gatehouse/error'] as { code?: string; upstream?: string } | undefined);

  it('answers GH_ERR_UPSTREAM_UNAVAILABLE for a namespaced name, naming its upstream and its last words', () => {
    expect(codeOf(catalog([]).unavailable('notes__read'))).toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE', upstream: 'notes', stderr: ['NOTES_DIR is not set'] });
    expect(catalog([]).unavailable('read')).toBeUndefined();
  });

  it('says so for an unprefixed name too when an upstream exposed under its own names is down, rather than "unknown tool"', () => {
    expect(codeOf(catalog(['notes']).unavailable('read'))).toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE', upstream: 'notes' });
    expect(codeOf(catalog(['notes', 'files']).unavailable('read'))?.upstream).toBe('notes, files');
    // A namespaced name of an upstream that is down is still that upstream's.
    expect(codeOf(catalog(['files']).unavailable('notes__read'))).toMatchObject({ upstream: 'notes' });
  });
});
