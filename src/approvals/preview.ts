import { redactArguments } from '../enforcement/redact.ts';
import type { ArgsCut } from '../protocol/approval-record.ts';

const MAX_PREVIEW = 600;
export const MASK = '[redacted]';

/**
 * The most redacted-argument JSON an approval record keeps (bytes, UTF-8). Every approver's list, page and CLI read
 * records whole, and Redis publishes each change of one, so the bound keeps them cheap.
 */
export const MAX_KEPT_ARGS_BYTES = 1024 * 1024;
/** Above the bound, longer strings are cut to the first of these lengths that fits (characters). */
const CUT_LENGTHS = [65_536, 16_384, 4_096, 1_024, 256, 64];

const SUMMARY_CHARS = 200;
/** How much of a value the summary shows: more of one that tells where the call acts (a path, a URL). */
const TELLING_CHARS = 80;
const OTHER_CHARS = 40;
const TELLING = /^(path|paths|file|files|filename|filepath|dir|directory|uri|url|urls|href|host|name|key|id|command|cmd|query|sql|to|target|dest|destination|source|src|repo|repository|branch|title|subject)$/i;
const PLAIN_KEY = /^[\w.-]{1,40}$/;

/** What an approval keeps of a call's arguments for the humans deciding: all of it redacted, never a raw secret. */
export interface ApprovalArguments {
  /** A short JSON rendering (at most about 600 characters), for messages such as an elicitation form. */
  argsPreview: string;
  /** One line of the most telling values (a path, the first characters of a content), for lists. */
  argsSummary: string;
  /** The arguments with the policy's `redact.args` rules and secret-looking keys masked, within the bound. */
  redactedArgs?: Record<string, unknown>;
  argsCut?: ArgsCut;
}

/**
 * What approvers may see of a call's arguments. Values the policy's `redact.args` names, and values under keys
 * that look secret, are masked before anything is kept: approval records are readable by every approver of the
 * tenant and must not become a place where secrets leak.
 */
export function approvalArguments(args: Record<string, unknown>, redact?: readonly string[]): ApprovalArguments {
  const redacted = redactArguments(args, redact, MASK);
  const text = JSON.stringify(redacted);
  return { argsPreview: preview(text), argsSummary: summarizeArguments(redacted), ...kept(redacted, Buffer.byteLength(text)) };
}

/** The short preview alone (see `approvalArguments`). */
export function previewArguments(args: Record<string, unknown>, redact?: readonly string[]): string {
  return preview(JSON.stringify(redactArguments(args, redact, MASK)));
}

/**
 * One line naming the values that tell calls apart: keys that say where the call acts first (path, url, name…),
 * then the others in order, each cut short, nested objects one level deep (`options.mode`). Takes arguments that
 * are already redacted.
 */
export function summarizeArguments(args: Record<string, unknown>): string {
  const entries = flatten(args);
  if (entries.length === 0) return '(no arguments)';
  const telling = entries.filter(([key]) => TELLING.test(key.slice(key.lastIndexOf('.') + 1)));
  const ordered = [...telling, ...entries.filter((e) => !telling.includes(e))];
  let line = '';
  for (let i = 0; i < ordered.length; i++) {
    const [key, value] = ordered[i];
    const part = `${PLAIN_KEY.test(key) ? key : JSON.stringify(cut(key, OTHER_CHARS))}: ${shortValue(value, telling.includes(ordered[i]) ? TELLING_CHARS : OTHER_CHARS)}`;
    if (line && line.length + part.length > SUMMARY_CHARS) return `${line}, +${ordered.length - i} more`;
    line += (line ? ', ' : '') + part;
  }
  return line;
}

/** An approval's summary line; a record written before summaries were kept gets its preview, on one line. */
export function argsSummaryOf(record: { argsSummary?: string; argsPreview: string }): string {
  if (record.argsSummary !== undefined) return record.argsSummary;
  const line = record.argsPreview.replace(/\s+/g, ' ');
  return line.length > SUMMARY_CHARS ? `${line.slice(0, SUMMARY_CHARS)}…` : line;
}

/** What an approver is told about arguments over the bound (page and CLI). */
export function argsCutNote(cut: ArgsCut): string {
  const over = `The arguments are ${mib(cut.bytes)} after redaction, over the ${mib(MAX_KEPT_ARGS_BYTES)} an approval keeps`;
  const shown = cut.maxChars === undefined ? 'too many values to cut short, so only a preview is kept' : `every text longer than ${cut.maxChars} characters is cut short here (it ends in …)`;
  return `${over}: ${shown}. The call itself is whole: approving it approves all of it.`;
}

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1).replace(/\.0$/, '')} MiB`;

function preview(text: string): string {
  return text.length > MAX_PREVIEW ? `${text.slice(0, MAX_PREVIEW)}… (${text.length} chars)` : text;
}

function flatten(args: Record<string, unknown>): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [key, value] of Object.entries(args)) {
    if (isObject(value) && Object.keys(value).length > 0) for (const [inner, v] of Object.entries(value)) out.push([`${key}.${inner}`, v]);
    else out.push([key, value]);
  }
  return out;
}

function shortValue(value: unknown, chars: number): string {
  if (typeof value === 'string') return value.length > chars ? `${JSON.stringify(value.slice(0, chars))}… (${value.length} chars)` : JSON.stringify(value);
  if (Array.isArray(value)) return value.length === 1 && typeof value[0] !== 'object' ? `[${shortValue(value[0], chars)}]` : `[${value.length} item${value.length === 1 ? '' : 's'}]`;
  if (isObject(value)) return `{${Object.keys(value).length} keys}`;
  return String(value);
}

/** The redacted arguments as kept on the record: whole when they fit the bound, else with long strings cut. */
function kept(redacted: Record<string, unknown>, bytes: number): Pick<ApprovalArguments, 'redactedArgs' | 'argsCut'> {
  if (bytes <= MAX_KEPT_ARGS_BYTES) return { redactedArgs: redacted };
  const fits = (value: unknown) => Buffer.byteLength(JSON.stringify(value)) <= MAX_KEPT_ARGS_BYTES;
  // The shortest cut first: arguments made of very many small values do not fit at any length, and are walked once.
  const shortest = CUT_LENGTHS[CUT_LENGTHS.length - 1];
  const shortestCut = cutStrings(redacted, shortest) as Record<string, unknown>;
  if (!fits(shortestCut)) return { argsCut: { bytes } };
  for (const maxChars of CUT_LENGTHS.slice(0, -1)) {
    const shorter = cutStrings(redacted, maxChars) as Record<string, unknown>;
    if (fits(shorter)) return { redactedArgs: shorter, argsCut: { bytes, maxChars } };
  }
  return { redactedArgs: shortestCut, argsCut: { bytes, maxChars: shortest } };
}

/** Redacted values are at most MAX_DEPTH deep (redactArguments masks anything deeper), so the recursion is bounded. */
function cutStrings(value: unknown, maxChars: number): unknown {
  if (typeof value === 'string') return value.length > maxChars ? `${value.slice(0, maxChars)}…` : value;
  if (Array.isArray(value)) return value.map((v) => cutStrings(v, maxChars));
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cutStrings(v, maxChars)]));
  return value;
}

function cut(text: string, chars: number): string {
  return text.length > chars ? `${text.slice(0, chars)}…` : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
