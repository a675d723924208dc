// The one pass of the result scanner (src/call/anchor-scan.ts): which literals it reports where, and whether it
// tells the scanner that a text may hold hidden characters (HIDDEN_UNITS, checked against SUSPECT itself).
import { describe, expect, it } from 'vitest';
import { AnchorSet } from '../../src/call/anchor-scan.ts';
import { HIDDEN_UNITS, hiddenSpans, SUSPECT } from '../../src/call/hidden-unicode.ts';

const found = (set: AnchorSet, text: string) => {
  const out: [string, number][] = [];
  const watched = set.scan(text, (literal, start) => out.push([set.literals[literal], start]));
  return { hits: out, watched };
};

describe('AnchorSet', () => {
  const set = new AnchorSet(['ignore', 'user', 'ask the user', '](http', 'sk-', 'ai'], HIDDEN_UNITS);

  it('finds every literal without case, the ones inside longer ones too', () => {
    expect(found(set, 'Please IGNORE it; ask the User.').hits).toEqual([['ignore', 7], ['ask the user', 18], ['user', 26]]);
    expect(found(set, 'see [docs](HTTPS://x) and task-runner').hits).toEqual([['](http', 9], ['sk-', 28]]);
  });

  it('reads any whitespace character as a space', () => {
    expect(found(set, 'ask\tthe\nuser').hits).toEqual([['ask the user', 0], ['user', 8]]);
  });

  it('reads any run of whitespace as one space, and reports where the literal starts', () => {
    expect(found(set, 'ask  the \r\n\tuser').hits).toEqual([['ask the user', 0], ['user', 12]]);
    expect(found(set, 'so  ask  the  user').hits).toEqual([['ask the user', 4], ['user', 14]]);
  });

  it('finds a literal made of words only at the start of a word, and none across a character outside ASCII', () => {
    expect(found(set, 'said signore ai').hits).toEqual([['ai', 13]]);
    expect(found(set, 'ign\u00F6re ig\u200Bnore').hits).toEqual([]);
  });

  it('says whether the text holds a watched code unit, or two paired ones side by side', () => {
    expect(found(set, 'plain text, caf\u00E9, \u{1F600}').watched).toBe(false);
    expect(found(set, 'zero\u200Bwidth').watched).toBe(true);
    expect(found(set, `tag ${String.fromCodePoint(0xe0041)}`).watched).toBe(true);
    expect(found(set, 'warning \u26A0\uFE0F and \u2714\uFE0F done').watched).toBe(false);
    expect(found(set, 'two \uFE0F\uFE01 selectors').watched).toBe(true);
  });

  it('refuses a literal outside ASCII or with whitespace at its ends', () => {
    expect(() => new AnchorSet(['caf\u00E9'])).toThrow();
    expect(() => new AnchorSet(['user '])).toThrow();
  });
});

describe('HIDDEN_UNITS', () => {
  const within = (ranges: readonly (readonly [number, number])[] | undefined, c: number) => (ranges ?? []).some(([from, to]) => c >= from && c <= to);

  it('holds a code unit of every character SUSPECT matches, and of no other; the variation selectors as a pair', () => {
    for (let c = 0; c < 0x10000; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      const selector = c >= 0xfe00 && c <= 0xfe0f;
      expect(within(HIDDEN_UNITS.alone, c), `U+${c.toString(16)}`).toBe(SUSPECT.test(String.fromCharCode(c)) && !selector);
      expect(within(HIDDEN_UNITS.paired, c), `U+${c.toString(16)}`).toBe(selector);
    }
    for (let cp = 0x10000; cp <= 0x10ffff; cp++) {
      const ch = String.fromCodePoint(cp);
      if (SUSPECT.test(ch)) expect(within(HIDDEN_UNITS.alone, ch.charCodeAt(0)) || within(HIDDEN_UNITS.alone, ch.charCodeAt(1)), `U+${cp.toString(16)}`).toBe(true);
    }
  });

  it('is all hiddenSpans needs: lone variation selectors (emoji) give no span', () => {
    for (let c = 0xfe00; c <= 0xfe0f; c++) expect(hiddenSpans(`a${String.fromCharCode(c)}b \u26A0${String.fromCharCode(c)}`)).toEqual([]);
    expect(hiddenSpans('a\uFE0F\uFE0Fb')).not.toEqual([]);
  });
});
