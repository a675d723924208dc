import { FINDING_KINDS, type DefinitionFinding, type FindingKind } from '../protocol/definition-finding.ts';
import { TEXT_RULES } from './definition-rules.ts';
import { escapeHidden, excerpt, EXCERPT_MAX, hiddenSpans, INVISIBLE } from './hidden-unicode.ts';

/**
 * The poisoning scan of a tool definition: every text a model reads of it (description, title, annotations, and in
 * inputSchema/outputSchema the descriptions, titles, enums, defaults, examples, and property names) checked for
 * instructions aimed at the model, hidden Unicode, markup that hides text, and words about another upstream's
 * tools. Pure and cheap: the rules are compiled once (definition-rules.ts), a clean string costs a few regex tests.
 */
export { FINDING_KINDS, type DefinitionFinding, type FindingKind };

export interface ScanContext {
  /** The tool's own upstream's tool names: naming one of them is the tool's own workflow. */
  siblings?: ReadonlySet<string>;
  /** The other upstreams' tools: bare tool name → the upstreams that serve it. */
  others?: ReadonlyMap<string, readonly string[]>;
}

/** Keys whose values are structure, not text the model is told. */
const STRUCTURAL = new Set(['type', '$schema', '$ref', '$id', 'format', 'required', 'pattern', 'name']);
const MAX_TEXTS = 5_000;
const EVERY_INVISIBLE = new RegExp(INVISIBLE, 'gu');

/** Words, as tool names are spelled: each is looked up among the other upstreams' tools. */
const WORD = /[A-Za-z][A-Za-z0-9_-]*/g;
/** Words that tell the model how to use a tool, in the sentence that names another upstream's tool. */
const STEER = /\b(?:always|never|must|should|instead|make\s+sure|ensure|remember|do\s+not|don'?t|important|whenever|every\s+time|before|after|b?cc|redirect|forward|override|replaced?|deprecated|broken|first)\b/i;
const CALL_TOOL = /\b(?:must|need\s+to|needs\s+to|should|always|first|then|also)\s+(?:first\s+|also\s+|always\s+)?(?:call|invoke|run|use|execute|trigger)\s+(?:the\s+)?['"`]?([A-Za-z][\w-]*)['"`]?/gi;
/** Checked apart from CALL_TOOL, which is case-blind: "ALWAYS use FROM:TO" names no tool. */
const TOOL_LIKE = /^(?:[A-Za-z][A-Za-z0-9]*(?:[_-][A-Za-z0-9]+)+|[a-z]+[A-Z][A-Za-z0-9]*)$/;
const CLAIMS_TO_REPLACE = /\b(?:use|call|prefer)\s+this\s+(?:tool\s+|one\s+|version\s+|function\s+)?(?:instead|rather)\s+(?:of|than)\s+(?:the\s+|any\s+)?(?:other|original|old|existing|built-in|default|standard)\b|\b(?:replaces?|supersedes?|overrides?)\s+(?:the\s+)?(?:other|old|original|existing|previous|default|legacy|standard|built-in|[\w-]+'s)\b|\b(?:improved|enhanced|updated|newer|fixed|secure|safer|official|preferred|correct|real)\s+(?:version|implementation|replacement)\s+of\b|\b(?:the\s+)?(?:other|original|old|existing)\s+(?:[\w-]+\s+)?(?:tool\s+)?(?:is|has\s+been|was)\s+(?:deprecated|broken|insecure|disabled|unsafe|compromised|removed)|\bdo\s+not\s+use\s+the\s+(?:other|original|old)\b/i;

export function scanDefinition(tool: object, context: ScanContext = {}): DefinitionFinding[] {
  const findings: DefinitionFinding[] = [];
  const seen = new Set<string>();
  const add = (f: DefinitionFinding) => {
    const key = `${f.kind}\u0000${f.rule}\u0000${f.field}`;
    if (seen.has(key)) return;
    seen.add(key);
    findings.push(f);
  };
  const name = typeof (tool as { name?: unknown }).name === 'string' ? (tool as { name: string }).name : '';
  for (const [field, text] of textsOf(tool)) scanText(name, field, text, context, add);
  return findings;
}

function scanText(name: string, field: string, text: string, context: ScanContext, add: (f: DefinitionFinding) => void): void {
  let visible = text;
  const hidden = hiddenSpans(text);
  for (const span of hidden) {
    add({ kind: 'hidden-unicode', rule: span.rule, field, span: [span.start, span.end], excerpt: excerpt(text, span.start, span.end), ...(span.decoded ? { decoded: escapeHidden(span.decoded.slice(0, EXCERPT_MAX)) } : {}) });
    // What hidden characters spell is read by the model too: it goes through the same rules.
    if (span.decoded) scanVisible(name, `${field} (tag characters)`, span.decoded, context, add);
  }
  // Invisible characters inside words ("ig\u200Bnore") must not hide them from the rules.
  if (hidden.length > 0) visible = text.replace(EVERY_INVISIBLE, '');
  scanVisible(name, field, visible, context, add);
}

function scanVisible(name: string, field: string, text: string, context: ScanContext, add: (f: DefinitionFinding) => void): void {
  for (const r of TEXT_RULES) {
    if (r.gate && !r.gate.test(text)) continue;
    r.re.lastIndex = 0;
    const m = r.re.exec(text);
    if (m) add({ kind: r.kind, rule: r.rule, field, span: [m.index, m.index + m[0].length], excerpt: excerpt(text, m.index, m.index + m[0].length) });
  }
  scanToolMentions(name, field, text, context, add);
}

/** Calls to tools the upstream does not serve, words about another upstream's tool, and a claim to replace one. */
function scanToolMentions(name: string, field: string, text: string, context: ScanContext, add: (f: DefinitionFinding) => void): void {
  const siblings = context.siblings ?? new Set<string>();
  const others = context.others ?? new Map<string, readonly string[]>();
  const foreign = (n: string) => n !== name && !siblings.has(n) && others.has(n);
  CALL_TOOL.lastIndex = 0;
  for (const m of text.matchAll(CALL_TOOL)) {
    const called = m[1];
    if (!TOOL_LIKE.test(called) || called === name || siblings.has(called) || foreign(called)) continue;
    add({ kind: 'model-instructions', rule: 'call-other-tool', field, span: [m.index, m.index + m[0].length], excerpt: excerpt(text, m.index, m.index + m[0].length) });
    break;
  }
  if (others.size > 0) {
    for (const m of text.matchAll(WORD)) {
      const mentioned = m[0];
      if (!foreign(mentioned) || !namesTool(text, mentioned, m.index)) continue;
      const [from, to] = sentenceAround(text, m.index, m.index + m[0].length);
      if (!STEER.test(text.slice(from, to))) continue;
      add({ kind: 'shadowing', rule: 'steers-other-tool', field, span: [from, to], excerpt: excerpt(text, m.index, m.index + m[0].length) });
      break;
    }
    if (others.has(name)) {
      const m = CLAIMS_TO_REPLACE.exec(text) ?? insteadOf(name).exec(text);
      if (m) add({ kind: 'shadowing', rule: 'replaces-tool', field, span: [m.index, m.index + m[0].length], excerpt: excerpt(text, m.index, m.index + m[0].length) });
    }
  }
}

/**
 * Whether a word that is another upstream's tool name is used as one: a snake_case, kebab-case or camelCase word is;
 * a plain word ("query", "echo") only in quotes or followed by "tool".
 */
function namesTool(text: string, word: string, at: number): boolean {
  if (TOOL_LIKE.test(word)) return true;
  const before = text[at - 1];
  const after = text[at + word.length];
  if (before !== undefined && before === after && '\'"`'.includes(before)) return true;
  return /^\s+tool\b/i.test(text.slice(at + word.length, at + word.length + 8));
}

/** "Use this instead of send_email", said by a tool that is itself called send_email. */
function insteadOf(name: string): RegExp {
  return new RegExp(String.raw`\b(?:instead\s+of|rather\s+than|in\s+place\s+of)\s+(?:the\s+)?(?:[\w-]+\s+)?['"\x60]?${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\b`, 'i');
}

function sentenceAround(text: string, start: number, end: number): [number, number] {
  let from = start;
  while (from > 0 && !'.!?\n'.includes(text[from - 1])) from--;
  let to = end;
  while (to < text.length && !'.!?\n'.includes(text[to])) to++;
  return [from, to];
}

/** Every text of the definition with its path; property names too, where hidden characters can sit. */
function textsOf(tool: object): [string, string][] {
  const out: [string, string][] = [];
  const walk = (value: unknown, path: string, depth: number): void => {
    if (out.length >= MAX_TEXTS || depth > 32) return;
    if (typeof value === 'string') {
      out.push([path, value]);
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${path}[${i}]`, depth + 1));
    } else if (value && typeof value === 'object') {
      for (const [key, v] of Object.entries(value)) {
        const at = path ? `${path}.${key}` : key;
        if (path.endsWith('properties')) out.push([`${at} (name)`, key]);
        if (STRUCTURAL.has(key) && (typeof v !== 'object' || Array.isArray(v))) continue;
        walk(v, at, depth + 1);
      }
    }
  };
  walk(tool, '', 0);
  return out;
}
