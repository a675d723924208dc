// The one pass of the result scanner (src/call/anchor-scan.ts): which literals it reports where, and whether it
// tells the scanner that a text may hold hidden characters (SUSPECT_UNITS, checked against SUSPECT itself).
import { describe, expect, it } from 'vitest';
import { AnchorSet } from '../../src/call/anchor-scan.ts';
import { SUSPECT, SUSPECT_UNITS } from '../../src/call/hidden-unicode.ts';

const found = (set: AnchorSet, text: string) => {
  const out: [string, number][] = [];
  const watched = set.scan(text, (literal, start) => out.push([set.literals[literal], start]));
  return { hits: out, watched };
};

describe('AnchorSet', () => {
  const set = new AnchorSet(['ignore', 'user', 'ask the user', '](http', 'sk-', 'ai'], SUSPECT_UNITS);

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

  it('says whether the text holds a watched code unit', () => {
    expect(found(set, 'plain text, caf\u00E9, \u{1F600}').watched).toBe(false);
    expect(found(set, 'zero\u200Bwidth').watched).toBe(true);
    expect(found(set, `tag ${String.fromCodePoint(0xe0041)}`).watched).toBe(true);
  });

  it('refuses a literal outside ASCII or with whitespace at its ends', () => {
    expect(() => new AnchorSet(['caf\u00E9'])).toThrow();
    expect(() => new AnchorSet(['user '])).toThrow();
  });
});

describe('SUSPECT_UNITS', () => {
  it('holds a code unit of every string SUSPECT matches, and of no other single character', () => {
    const unit = (c: number) => SUSPECT_UNITS.some(([from, to]) => c >= from && c <= to);
    for (let c = 0; c < 0x10000; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      expect(unit(c), `U+${c.toString(16)}`).toBe(SUSPECT.test(String.fromCharCode(c)));
    }
    for (let cp = 0x10000; cp <= 0x10ffff; cp++) {
      const ch = String.fromCodePoint(cp);
      if (SUSPECT.test(ch)) expect(unit(ch.charCodeAt(0)) || unit(ch.charCodeAt(1)), `U+${cp.toString(16)}`).toBe(true);
    }
  });
});
