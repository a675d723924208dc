import { describe, expect, it } from 'vitest';
import { redactArguments, redactResult, redactValue } from '../../src/enforcement/redact.ts';
import { previewArguments } from '../../src/approvals/preview.ts';

const R = '[REDACTED]';

describe('redacting recorded arguments', () => {
  const rules = ['password', 'auth.token', 'items.*.secret', '/sk-[A-Za-z0-9]{20,}/'];

  it('applies bare names at any depth, dotted paths from the top, and patterns to every string', () => {
    const args = {
      user: 'ann',
      password: 'hunter2',
      nested: { deeper: [{ password: 'p2' }] },
      conn: { token: { kind: 'bearer', value: 'abc' }, scheme: 'Bearer' },
      other: { conn: { token: 'not-a-top-level-path' } },
      items: [{ secret: 's1', name: 'a' }, { secret: 's2' }],
      note: 'key sk-abcdefghijklmnopqrstuvwxyz012 here',
    };
    expect(redactArguments(args, ['password', 'conn.scheme', 'items.*.secret', '/sk-[A-Za-z0-9]{20,}/'])).toEqual({
      user: 'ann',
      password: R,
      nested: { deeper: [{ password: R }] },
      conn: { token: R, scheme: R }, // `token` by the default secret keys, `scheme` by the rule
      other: { conn: { token: R } }, // a secret-looking key, rule or not
      items: [{ secret: R, name: 'a' }, { secret: R }],
      note: `key ${R} here`,
    });
  });

  it('crosses arrays element-wise for dotted paths', () => {
    expect(redactArguments({ hooks: [{ cfg: { url: 'u1' } }, { cfg: { url: 'u2' } }] }, ['hooks.cfg.url'])).toEqual({ hooks: [{ cfg: { url: R } }, { cfg: { url: R } }] });
    expect(redactArguments({ list: ['a', 'b'] }, ['list.1'])).toEqual({ list: ['a', R] });
  });

  it('masks secret-looking keys without any rule, and returns the very same object when nothing matched', () => {
    const args = { path: '/a', apiKey: 'k', api_key: 'k', Authorization: 'Bearer x', privateKey: 'p', credentials: { u: 1 }, sessionToken: 't' };
    expect(redactArguments(args)).toEqual({ path: '/a', apiKey: R, api_key: R, Authorization: R, privateKey: R, credentials: R, sessionToken: R });
    const clean = { path: '/a', list: [1, { x: 'y' }] };
    expect(redactArguments(clean)).toBe(clean);
    expect(redactArguments(clean, rules)).toBe(clean);
  });

  it('never changes the arguments it was given (the upstream gets them as sent)', () => {
    const args = { password: 'p', items: [{ secret: 's' }] };
    const copy = structuredClone(args);
    redactArguments(args, rules);
    expect(args).toEqual(copy);
  });

  it('reaches the approval preview', () => {
    expect(previewArguments({ path: '/a', card: '4111', apiKey: 'k' }, ['card'])).toBe('{"path":"/a","card":"[redacted]","apiKey":"[redacted]"}');
  });
});

describe('redacting results', () => {
  const rules = ['secret', 'creds.key', '/AKIA[0-9A-Z]{16}/'];

  it('redacts structuredContent, JSON inside text parts, and patterns in every string', () => {
    const result = {
      content: [
        { type: 'text', text: JSON.stringify({ ok: true, secret: 'shh', creds: { key: 'k', id: 'AKIAABCDEFGHIJKLMNOP' } }) },
        { type: 'text', text: 'plain text with AKIAABCDEFGHIJKLMNOP in it, and "secret": "not parsed"' },
        { type: 'resource', resource: { uri: 'mem://x', text: '{\n  "secret": "s"\n}' } },
      ],
      structuredContent: { rows: [{ secret: 1 }, { secret: 2, v: 'AKIAABCDEFGHIJKLMNOP' }], creds: { key: 'k2' } },
      _meta: { note: 'AKIAABCDEFGHIJKLMNOP' },
    };
    const out = redactResult(result, rules);
    expect(JSON.parse(out.content[0].text as string)).toEqual({ ok: true, secret: R, creds: { key: R, id: R } });
    expect(out.content[1].text).toBe(`plain text with ${R} in it, and "secret": "not parsed"`);
    expect((out.content[2].resource as { text: string }).text).toBe(`{\n  "secret": "${R}"\n}`);
    expect(out.structuredContent).toEqual({ rows: [{ secret: R }, { secret: R, v: R }], creds: { key: R } });
    expect(out._meta).toEqual({ note: R });
    expect(JSON.stringify(out)).not.toMatch(/AKIA[0-9A-Z]{16}|shh/);
  });

  it("applies field rules to the result's _meta, which reaches the client too", () => {
    const out = redactResult({ content: [], _meta: { secret: 'shh', trace: { creds: { key: 'k' } }, creds: { key: 'k2', id: 'i' } } }, rules);
    expect(out._meta).toEqual({ secret: R, trace: { creds: { key: 'k' } }, creds: { key: R, id: 'i' } });
  });

  it('redacts keys named __proto__ like any other (JSON text parses them as own keys)', () => {
    const out = redactResult({ content: [{ type: 'text', text: '{"__proto__": {"secret": "shh"}}' }], structuredContent: JSON.parse('{"__proto__": {"secret": "shh"}}') }, rules);
    expect(JSON.stringify(out)).not.toContain('shh');
  });

  it('redacts every match of a pattern, call after call (no regex state carried over)', () => {
    const text = 'AKIAABCDEFGHIJKLMNOP and AKIAQRSTUVWXYZ234567';
    for (let i = 0; i < 3; i++) expect(redactResult({ content: [{ type: 'text', text }] }, rules).content[0].text).toBe(`${R} and ${R}`);
    expect(redactArguments({ a: text, b: [text] }, ['/AKIA[0-9A-Z]{16}/'])).toEqual({ a: `${R} and ${R}`, b: [`${R} and ${R}`] });
  });

  it('leaves an untouched result as it was', () => {
    const result = { content: [{ type: 'text', text: '{"fine": 1}' }] };
    expect(redactResult(result, rules)).toBe(result);
  });

  it('redacts an upstream error on its way to the client', () => {
    expect(redactValue({ code: -32000, message: 'bad key AKIAABCDEFGHIJKLMNOP' }, rules)).toEqual({ code: -32000, message: `bad key ${R}` });
  });

  it('refuses a malformed pattern rather than let the secret through', () => {
    expect(() => redactResult({ content: [] }, ['/([a-z/'])).toThrow(expect.objectContaining({ code: 'GH_ERR_POLICY_INVALID' }));
  });
});
