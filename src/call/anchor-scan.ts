/**
 * Finds many literals in one pass (Aho-Corasick over ASCII, letters without case, any run of whitespace as one
 * space): what the result scanner looks for before it runs a rule. A regular expression with a hundred
 * alternatives tries each at every position; this reads each character once, so a 10 KB result costs a few µs.
 */
const WIDTH = 128;
/** log2(WIDTH): a state from its row offset. */
const SHIFT = 7;
const SPACE = 32;

/** A character as the automaton reads it: lower-case ASCII, any whitespace a space, anything else -1 (no match across it). */
function fold(c: number): number {
  if (c >= 65 && c <= 90) return c | 0x20;
  if (c === 9 || c === 10 || c === 13 || c === 12) return SPACE;
  return c < WIDTH ? c : -1;
}

/** `fold` of every ASCII code, computed once. */
const FOLDED = Int8Array.from({ length: WIDTH }, (_, c) => fold(c));

export class AnchorSet {
  /** The transitions, state by state (WIDTH each), each as the target state's offset (state × WIDTH). */
  private readonly rows: Int32Array;
  /** For each state, the literals (by index) that end there, including through its fail links. */
  private readonly ends: (readonly number[] | undefined)[];
  /** 1 where a state ends some literal: the common case (none) is one byte read. */
  private readonly hasEnd: Uint8Array;
  /** Whether a literal must start at a word boundary (it is made of words only). */
  private readonly wordStart: readonly boolean[];

  constructor(readonly literals: readonly string[]) {
    const goto: Map<number, number>[] = [new Map()];
    const ends: number[][] = [[]];
    const depth: number[] = [0];
    literals.forEach((literal, index) => {
      let state = 0;
      for (const ch of literal.toLowerCase()) {
        const c = fold(ch.charCodeAt(0));
        if (c < 0) throw new Error(`anchor ${JSON.stringify(literal)} is not ASCII`);
        let to = goto[state].get(c);
        if (to === undefined) {
          to = goto.length;
          goto.push(new Map());
          ends.push([]);
          depth.push(depth[state] + 1);
          goto[state].set(c, to);
        }
        state = to;
      }
      ends[state].push(index);
    });
    // Breadth first: each state's fail link, and its full transition row.
    const next = new Int32Array(goto.length * WIDTH);
    const fail = new Int32Array(goto.length);
    const queue: number[] = [];
    for (let c = 0; c < WIDTH; c++) {
      const to = goto[0].get(c) ?? 0;
      next[c] = to;
      if (to !== 0) queue.push(to);
    }
    for (let q = 0; q < queue.length; q++) {
      const state = queue[q];
      ends[state].push(...ends[fail[state]]);
      for (let c = 0; c < WIDTH; c++) {
        const to = goto[state].get(c);
        if (to === undefined) next[state * WIDTH + c] = next[fail[state] * WIDTH + c];
        else {
          fail[to] = next[fail[state] * WIDTH + c];
          next[state * WIDTH + c] = to;
          queue.push(to);
        }
      }
    }
    this.rows = next.map((to) => to * WIDTH);
    this.ends = ends.map((e) => (e.length > 0 ? e : undefined));
    this.hasEnd = Uint8Array.from(ends, (e) => (e.length > 0 ? 1 : 0));
    this.wordStart = literals.map((l) => /^[a-z]+(?: [a-z]+)*$/i.test(l));
    this.lengths = literals.map((l) => l.length);
  }

  private readonly lengths: readonly number[];

  /**
   * Calls `hit(literal, start)` for each literal found (start approximate by the whitespace folded before it). A
   * literal made of words only must not follow a letter, digit or underscore.
   */
  scan(text: string, hit: (literal: number, start: number) => void): void {
    const { rows, ends, hasEnd, wordStart, lengths } = this;
    // `row` is the state's offset in `rows` (state × WIDTH): one multiply fewer per character.
    let row = 0;
    let lastSpace = false;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      const c = code < WIDTH ? FOLDED[code] : -1;
      if (c < 0) {
        row = 0;
        lastSpace = false;
        continue;
      }
      if (c === SPACE) {
        if (lastSpace) continue;
        lastSpace = true;
      } else lastSpace = false;
      row = rows[row + c];
      if (hasEnd[row >> SHIFT] === 0) continue;
      for (const literal of ends[row >> SHIFT]!) {
        const start = i + 1 - lengths[literal];
        if (wordStart[literal] && start > 0 && isWordChar(text.charCodeAt(start - 1))) continue;
        hit(literal, Math.max(0, start));
      }
    }
  }
}

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
