/**
 * Finds many literals in one pass (Aho-Corasick over ASCII, letters without case, any run of whitespace as one
 * space): what the result scanner looks for before it runs a rule. A regular expression with a hundred
 * alternatives tries each at every position; this reads each character once, so a 10 KB result costs a few µs.
 * The same pass notes whether the text holds a watched code unit, or two of a paired set together (the scanner's
 * invisible characters; a lone emoji variation selector is not one), so
 * that the (nearly all) texts without one are not read a second time.
 */
const ASCII = 128;
const ALONE = 1;
const PAIRED = 2;

/** Code units (inclusive ranges) `scan` looks out for: any one of `alone`, or two of `paired` side by side. */
export interface Watch {
  alone?: readonly (readonly [number, number])[];
  paired?: readonly (readonly [number, number])[];
}
const SPACE = 32;

/** A character as the automaton reads it: lower-case ASCII, any whitespace a space, anything else -1 (no match across it). */
function fold(c: number): number {
  if (c >= 65 && c <= 90) return c | 0x20;
  if (c === 9 || c === 10 || c === 13 || c === 12) return SPACE;
  return c < ASCII ? c : -1;
}

export class AnchorSet {
  /** Each ASCII code's column: 0 for a character no literal holds (it leads back to the root), else 1… */
  private readonly column = new Uint8Array(ASCII);
  /** Columns per state: a state's row starts at state × width. */
  private readonly width: number;
  /**
   * The transitions, row by row, each as the target's row offset, or its bitwise complement (negative) when some
   * literal ends at the target: the common case (none) is one load and one sign test per character.
   */
  private readonly rows: Int32Array;
  /** For each state, the literals (by index) that end there, including through its fail links. */
  private readonly ends: (readonly number[] | undefined)[];
  /** Whether a literal must start at a word boundary (it is made of words only). */
  private readonly wordStart: readonly boolean[];
  private readonly lengths: readonly number[];
  /** Whether a literal holds whitespace: where it starts is found by reading back over it. */
  private readonly spaced: readonly boolean[];
  /** For each UTF-16 code unit at or above ASCII: ALONE, PAIRED or 0. */
  private readonly watched: Uint8Array;

  /** `watch`: ranges of code units (inclusive, none below 128) whose presence `scan` reports, alone or two together. */
  constructor(readonly literals: readonly string[], watch: Watch = {}) {
    const goto: Map<number, number>[] = [new Map()];
    const ends: number[][] = [[]];
    const lastChar: number[] = [-1];
    literals.forEach((literal, index) => {
      // A run of whitespace is read as one space only between words (see the self-loops below).
      if (literal !== literal.trim() || /\s\s/.test(literal)) throw new Error(`anchor ${JSON.stringify(literal)} has whitespace at an end or two together`);
      let state = 0;
      for (const ch of literal.toLowerCase()) {
        const c = fold(ch.charCodeAt(0));
        if (c < 0) throw new Error(`anchor ${JSON.stringify(literal)} is not ASCII`);
        let to = goto[state].get(c);
        if (to === undefined) {
          to = goto.length;
          goto.push(new Map());
          ends.push([]);
          lastChar.push(c);
          goto[state].set(c, to);
        }
        state = to;
      }
      ends[state].push(index);
    });
    const chars = [...new Set(lastChar.filter((c) => c >= 0))].sort((a, b) => a - b);
    chars.forEach((c, i) => (this.column[c] = i + 1));
    for (let code = 0; code < ASCII; code++) {
      const c = fold(code);
      if (c >= 0 && c !== code) this.column[code] = this.column[c];
    }
    const width = (this.width = chars.length + 1);
    // Breadth first: each state's fail link, and its full transition row (by column).
    const next = new Int32Array(goto.length * width);
    const fail = new Int32Array(goto.length);
    const queue: number[] = [];
    for (const [c, to] of goto[0]) {
      next[this.column[c]] = to;
      queue.push(to);
    }
    for (let q = 0; q < queue.length; q++) {
      const state = queue[q];
      ends[state].push(...ends[fail[state]]);
      for (let col = 0; col < width; col++) {
        const to = col === 0 ? undefined : goto[state].get(chars[col - 1]);
        if (to === undefined) next[state * width + col] = next[fail[state] * width + col];
        else {
          fail[to] = next[fail[state] * width + col];
          next[state * width + col] = to;
          queue.push(to);
        }
      }
    }
    // A run of whitespace reads as one space: a state just past a space stays where it is on the next one. (No
    // literal ends in a space, so staying reports nothing twice; at the root a space leads back to the root.)
    const space = this.column[SPACE];
    if (space > 0) for (let state = 1; state < goto.length; state++) if (lastChar[state] === SPACE) next[state * width + space] = state;
    this.rows = next.map((to) => (ends[to].length > 0 ? ~(to * width) : to * width));
    this.ends = ends.map((e) => (e.length > 0 ? e : undefined));
    this.wordStart = literals.map((l) => /^[a-z]+(?: [a-z]+)*$/i.test(l));
    this.lengths = literals.map((l) => l.length);
    this.spaced = literals.map((l) => /\s/.test(l));
    this.watched = new Uint8Array(0x10000);
    for (const [from, to] of watch.paired ?? []) this.watched.fill(PAIRED, Math.max(from, ASCII), to + 1);
    for (const [from, to] of watch.alone ?? []) this.watched.fill(ALONE, Math.max(from, ASCII), to + 1);
  }

  /**
   * Calls `hit(literal, start)` for each literal found, with where it starts in the text. A
   * literal made of words only must not follow a letter, digit or underscore. Returns whether the text holds a
   * watched code unit (alone, or two paired ones side by side).
   */
  scan(text: string, hit: (literal: number, start: number) => void): boolean {
    const { rows, column, watched } = this;
    const n = text.length;
    let row = 0;
    let sawWatched = 0;
    let lastPaired = -2;
    for (let i = 0; ; i++) {
      // The inner loop calls nothing, so V8 keeps the tables' addresses in registers; it stops at each literal's end.
      let to = 0;
      for (; i < n; i++) {
        const code = text.charCodeAt(i);
        if (code < ASCII) {
          to = rows[row + column[code]];
          if (to < 0) break;
        } else {
          to = 0;
          const w = watched[code];
          if (w === ALONE || (w === PAIRED && lastPaired === i - 1)) sawWatched = 1;
          if (w === PAIRED) lastPaired = i;
        }
        row = to;
      }
      if (i >= n) return sawWatched !== 0;
      row = ~to;
      this.report(text, row, i, hit);
    }
  }

  private report(text: string, row: number, i: number, hit: (literal: number, start: number) => void): void {
    for (const literal of this.ends[row / this.width]!) {
      const start = this.spaced[literal] ? this.startOf(text, literal, i) : i + 1 - this.lengths[literal];
      if (this.wordStart[literal] && start > 0 && isWordChar(text.charCodeAt(start - 1))) continue;
      hit(literal, Math.max(0, start));
    }
  }

  /** Where a literal with whitespace that ends at `last` starts: each of its spaces stood for a run of whitespace. */
  private startOf(text: string, literal: number, last: number): number {
    const chars = this.literals[literal];
    let at = last;
    for (let k = chars.length - 1; k >= 0; k--) {
      if (chars.charCodeAt(k) !== SPACE) at--;
      else while (at >= 0 && fold(text.charCodeAt(at)) === SPACE) at--;
    }
    return at + 1;
  }
}

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
