import { describe, expect, it } from 'vitest';
import type { ApprovalRecord } from '../../src/protocol/approval-record.ts';
import { approvalArguments, argsCutNote, argsSummaryOf, MAX_KEPT_ARGS_BYTES, summarizeArguments } from '../../src/approvals/preview.ts';
import { detailPage, listPage } from '../../src/api/views.ts';

describe('the argument summary of an approval', () => {
  it('puts where the call acts first, then the start of the other values, on one line', () => {
    const content = 'line one\nline two\n'.repeat(50);
    const summary = summarizeArguments({ content, mode: 0o644, path: '/srv/app/config.yaml' });
    expect(summary).toBe(`path: "/srv/app/config.yaml", content: ${JSON.stringify(content.slice(0, 40))}… (${content.length} chars), mode: 420`);
    expect(summary).not.toContain('\n');
  });

  it('looks one level into objects, names the size of arrays and deeper objects, and stays short', () => {
    expect(summarizeArguments({ options: { url: 'https://example.com/x', headers: { a: '1', b: '2' } }, items: [1, 2, 3], tags: ['x'] })).toBe(
      'options.url: "https://example.com/x", options.headers: {2 keys}, items: [3 items], tags: ["x"]',
    );
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`field${i}`, `value number ${i}`]));
    const summary = summarizeArguments(many);
    expect(summary.length).toBeLessThan(260);
    expect(summary).toMatch(/, \+\d+ more$/);
    expect(summarizeArguments({})).toBe('(no arguments)');
    // A hostile key cannot break the line either.
    expect(summarizeArguments({ 'a\nb': 'v' })).toBe('"a\\nb": "v"');
  });

  it('is made from the redacted arguments: secrets by key and by the policy never show', () => {
    const kept = approvalArguments({ path: '/a', apiKey: 'AK-123', note: 'use sk-ABCDEFGH12345678 now' }, ['/sk-[A-Za-z0-9]{8,}/']);
    expect(kept.argsSummary).toBe('path: "/a", apiKey: "[redacted]", note: "use [redacted] now"');
    expect(kept.redactedArgs).toEqual({ path: '/a', apiKey: '[redacted]', note: 'use [redacted] now' });
    expect(JSON.stringify(kept)).not.toMatch(/AK-123|sk-ABCDEFGH/);
  });

  it('falls back to the preview for a record written before summaries were kept', () => {
    expect(argsSummaryOf({ argsPreview: '{"a":\n"b"}' })).toBe('{"a": "b"}');
    expect(argsSummaryOf({ argsPreview: '{}', argsSummary: 'a: 1' })).toBe('a: 1');
  });
});

describe('the redacted arguments an approval keeps', () => {
  it('keeps them whole up to the bound, past the short preview', () => {
    const value = 'x'.repeat(200_000);
    const kept = approvalArguments({ value });
    expect(kept.redactedArgs).toEqual({ value });
    expect(kept.argsCut).toBeUndefined();
    expect(kept.argsPreview.length).toBeLessThan(700);
  });

  it('over the bound, cuts long strings until the record fits, and says so', () => {
    const big = 'y'.repeat(MAX_KEPT_ARGS_BYTES);
    const kept = approvalArguments({ path: '/p', big, other: 'z'.repeat(100_000) });
    expect(Buffer.byteLength(JSON.stringify(kept.redactedArgs))).toBeLessThanOrEqual(MAX_KEPT_ARGS_BYTES);
    expect(kept.argsCut).toEqual({ bytes: Buffer.byteLength(JSON.stringify({ path: '/p', big, other: 'z'.repeat(100_000) })), maxChars: 65_536 });
    expect(kept.redactedArgs).toEqual({ path: '/p', big: `${'y'.repeat(65_536)}…`, other: `${'z'.repeat(65_536)}…` });
    expect(argsCutNote(kept.argsCut!)).toMatch(/over the 1 MiB an approval keeps: every text longer than 65536 characters is cut short/);
  });

  it('keeps none of them when even short strings do not fit, and keeps the summary and preview', () => {
    const items = Array.from({ length: 200_000 }, (_, i) => i);
    const kept = approvalArguments({ path: '/p', items });
    expect(kept.redactedArgs).toBeUndefined();
    expect(kept.argsCut).toEqual({ bytes: Buffer.byteLength(JSON.stringify({ path: '/p', items })) });
    expect(kept.argsSummary).toBe('path: "/p", items: [200000 items]');
    expect(argsCutNote(kept.argsCut!)).toMatch(/only a preview is kept/);
  });
});

describe('the approval page of arguments over the bound, or from an older version', () => {
  const record = (fields: Partial<ApprovalRecord>): ApprovalRecord => ({
    version: 2,
    id: 'apr_X',
    state: 'pending',
    tenant: 'default',
    principal: 'agent',
    server: 'fx',
    tool: 'fx__write',
    argsDigest: 'sha256:a',
    toolDigest: 'sha256:t',
    policySnapshot: 'sha256:p',
    bindingKey: 'b',
    jobId: 'J',
    ruleIds: ['r'],
    reason: 'destructive',
    argsPreview: '{"path":"/p","big":"yyyy"}… (2000000 chars)',
    createdAt: 0,
    expiresAt: 60_000,
    history: [{ state: 'pending', at: 0, actor: 'agent' }],
    selfApprove: true,
    quorum: 1,
    onApprove: 'wait_for_retry',
    votes: [],
    ...fields,
  });
  const me = { principal: 'alice', tenant: 'default', role: 'approver' as const, logoutToken: undefined };
  const render = (fields: Partial<ApprovalRecord>) => detailPage(record(fields), { me, now: 0, csrfToken: 't' });

  it('says the arguments were cut, and how, above the cut values', () => {
    const page = render({ redactedArgs: { path: '/p', big: `${'y'.repeat(64)}…` }, argsCut: { bytes: 2_000_000, maxChars: 64 } });
    expect(page).toContain('The arguments are 1.9 MiB after redaction, over the 1 MiB an approval keeps: every text longer than 64 characters is cut short');
    expect(page).toContain('download arguments.json');
  });

  it('shows the preview, and says why, when no whole arguments were kept', () => {
    const over = render({ argsCut: { bytes: 2_000_000 } });
    expect(over).toContain('only a preview is kept');
    expect(over).toContain('<pre>{&quot;path&quot;:&quot;/p&quot;,&quot;big&quot;:&quot;yyyy&quot;}… (2000000 chars)</pre>');
    expect(over).not.toContain('arguments.json');
    expect(render({})).toContain('as previewed by the version that asked');
    expect(listPage([record({})], { me, now: 0, showing: 'pending' })).toContain('{&quot;path&quot;:&quot;/p&quot;,&quot;big&quot;:&quot;yyyy&quot;}… (2000000 chars)');
  });
});
