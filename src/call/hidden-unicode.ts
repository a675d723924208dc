/**
 * Characters a model reads and a person does not see: Unicode tag characters (ASCII smuggling), bidi controls
 * (text shown in another order than it is read), zero-width runs and variation selectors carrying data. And how to
 * show them in a log or an audit record without passing them on: escaped as `\u{E0041}`.
 */
import type { Watch } from './anchor-scan.ts';

export interface HiddenSpan {
  rule: 'tag-characters' | 'bidi-control' | 'zero-width' | 'variation-selectors';
  start: number;
  end: number;
  /** For tag characters: the ASCII they spell, which the model reads. */
  decoded?: string;
}

/** Any character worth a closer look: the fast path for the (nearly all) strings that hold none. */
export const SUSPECT = /[\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}\u202A-\u202E\u2066-\u2069\u200B-\u200F\u061C\u2060-\u2064\uFEFF\u180E\uFE00-\uFE0F]/u;
/**
 * The UTF-16 code units (inclusive ranges) without which hiddenSpans finds nothing: SUSPECT's characters (tag
 * characters and supplementary selectors, U+E0000–U+E01EF, share the high surrogate U+DB40), but the variation
 * selectors U+FE00–U+FE0F only two together, since a lone one is how an emoji is drawn (⚠️ is U+26A0 U+FE0F).
 */
export const HIDDEN_UNITS: Watch = {
  alone: [[0x061c, 0x061c], [0x180e, 0x180e], [0x200b, 0x200f], [0x202a, 0x202e], [0x2060, 0x2064], [0x2066, 0x2069], [0xdb40, 0xdb40], [0xfeff, 0xfeff]],
  paired: [[0xfe00, 0xfe0f]],
};
const TAGS = /[\u{E0000}-\u{E007F}]+/gu;
const BIDI_OVERRIDE = /[\u202D\u202E]/g;
const BIDI_OTHER = /[\u202A-\u202C\u2066-\u2069\u200E\u200F\u061C]+/g;
const ZERO_WIDTH = /[\u200B-\u200D\u2060-\u2064\uFEFF\u180E]+/g;
const SELECTOR_SUPPLEMENT = /[\u{E0100}-\u{E01EF}]+/gu;
const SELECTOR_RUN = /[\uFE00-\uFE0F]{2,}/g;
/** Right-to-left scripts, whose text legitimately carries direction marks and embeddings. */
const RTL_LETTERS = /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFC]/;
/** What may stand beside a lone joiner: emoji (👨‍👩‍👧, 🏳️‍🌈) and the letters of scripts that join (Persian, Indic). */
const EMOJI_SIDE = /[\p{Extended_Pictographic}\p{Emoji_Modifier}\uFE0F]/u;
const JOINING_LETTER = /[\p{L}\p{M}]/u;
const LATIN = /[A-Za-z]/;

export function hiddenSpans(text: string): HiddenSpan[] {
  if (!SUSPECT.test(text)) return [];
  const spans: HiddenSpan[] = [];
  for (const m of text.matchAll(TAGS)) {
    spans.push({ rule: 'tag-characters', start: m.index, end: m.index + m[0].length, decoded: decodeTags(m[0]) });
  }
  for (const m of text.matchAll(BIDI_OVERRIDE)) spans.push({ rule: 'bidi-control', start: m.index, end: m.index + 1 });
  if (!RTL_LETTERS.test(text)) {
    for (const m of text.matchAll(BIDI_OTHER)) spans.push({ rule: 'bidi-control', start: m.index, end: m.index + m[0].length });
  }
  for (const m of text.matchAll(ZERO_WIDTH)) {
    if (m[0].length === 1 && benignLoneZeroWidth(text, m.index)) continue;
    spans.push({ rule: 'zero-width', start: m.index, end: m.index + m[0].length });
  }
  for (const re of [SELECTOR_SUPPLEMENT, SELECTOR_RUN]) {
    for (const m of text.matchAll(re)) spans.push({ rule: 'variation-selectors', start: m.index, end: m.index + m[0].length });
  }
  return spans;
}

/** A BOM at the start, a joiner inside an emoji sequence, or a (non-)joiner between letters of a joining script. */
function benignLoneZeroWidth(text: string, at: number): boolean {
  const ch = text[at];
  if (ch === '\uFEFF') return at === 0;
  if (ch !== '\u200D' && ch !== '\u200C') return false;
  const before = String.fromCodePoint(text.codePointAt(at - 1 >= 0 && isLowSurrogate(text, at - 1) ? at - 2 : at - 1) ?? 0);
  const after = String.fromCodePoint(text.codePointAt(at + 1) ?? 0);
  if (ch === '\u200D' && EMOJI_SIDE.test(before) && EMOJI_SIDE.test(after)) return true;
  return JOINING_LETTER.test(before) && JOINING_LETTER.test(after) && !LATIN.test(before) && !LATIN.test(after);
}

function isLowSurrogate(text: string, at: number): boolean {
  const c = text.charCodeAt(at);
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Tag characters mirror ASCII (U+E0041 is "A"): what a hidden run says. */
export function decodeTags(run: string): string {
  let out = '';
  for (const ch of run) {
    const cp = ch.codePointAt(0)! - 0xe0000;
    if (cp >= 0x20 && cp < 0x7f) out += String.fromCharCode(cp);
  }
  return out;
}

const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;

/** Text fit for a log line or an audit record: every invisible or control character escaped as `\u{XXXX}`. */
/** One invisible character (tag, bidi control, zero-width, joiner): what the scanners drop before their text rules run. */
export const INVISIBLE = /[\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}\u202A-\u202E\u2066-\u2069\u200B-\u200F\u061C\u2060-\u2064\uFEFF\u180E]/u;

const EXCERPT_SIDE = 30;
/** The longest excerpt, in code units of the text. */
export const EXCERPT_MAX = 160;
const EXCERPT_ESCAPED_MAX = 240;

/**
 * The text around a finding for the audit record and the operator: hidden characters escaped (`\u{E0041}`), and, since
 * a run of them escapes to ten times its length, a readable start of it, cut before an escape, never inside one.
 */
export function excerpt(text: string, start: number, end: number): string {
  const from = Math.max(0, start - EXCERPT_SIDE);
  const to = Math.min(text.length, end + EXCERPT_SIDE, from + EXCERPT_MAX);
  const escaped = escapeHidden(text.slice(from, to));
  const shown = escaped.length > EXCERPT_ESCAPED_MAX ? escaped.slice(0, cutBefore(escaped, EXCERPT_ESCAPED_MAX)) : escaped;
  return `${from > 0 ? '…' : ''}${shown}${to < text.length || shown !== escaped ? '…' : ''}`;
}

/** Where to cut escaped text at about `max` without splitting a `\u{…}` escape. */
function cutBefore(escaped: string, max: number): number {
  const open = escaped.lastIndexOf('\\u{', max);
  return open >= 0 && escaped.indexOf('}', open) >= max ? open : max;
}

export function escapeHidden(text: string): string {
  return text.replace(UNPRINTABLE, (ch) => (ch === '\n' ? '\\n' : ch === '\t' ? '\\t' : `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}`));
}

const INVISIBLE_IN_JSON = /[\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;

/** JSON text with every invisible character written as its `\uXXXX` escape: the same value, nothing hidden on screen. */
export function jsonWithoutHidden(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(INVISIBLE_IN_JSON, (ch) => [...Array(ch.length).keys()].map((i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''));
}
