import { afterEach, describe, expect, it, vi } from 'vitest';
import { compileArgumentCheck } from '../../src/call/argument-validator.ts';

afterEach(() => vi.restoreAllMocks());

describe('argument checks and JSON Schema formats', () => {
  it('compile a schema with formats without writing a word to the console (stderr carries JSON logs only)', () => {
    const written = [vi.spyOn(console, 'warn'), vi.spyOn(console, 'log'), vi.spyOn(console, 'error')];
    const check = compileArgumentCheck({ type: 'object', properties: { url: { type: 'string', format: 'uri' }, at: { type: 'string', format: 'date-time' }, odd: { type: 'string', format: 'made-up' } } });
    expect(check).toBeDefined();
    for (const spy of written) expect(spy).not.toHaveBeenCalled();
  });

  it('treat a format as an annotation, as JSON Schema 2020-12 does: the upstream judges it; types still count', () => {
    const check = compileArgumentCheck({ type: 'object', properties: { url: { type: 'string', format: 'uri' } } })!;
    expect(check({ url: 'not a uri at all' })).toBeUndefined();
    expect(check({ url: 42 })).toBeDefined();
  });
});
