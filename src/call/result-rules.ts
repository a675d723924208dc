/**
 * The text rules of the result scanner (result-scan.ts), compiled once. A tool result is not a tool definition:
 * READMEs, web pages and file contents legitimately say "use the X function", "upload files to S3", "private
 * key", and carry `<!-- badges -->` comments. So only the definition rules that stay silent on ordinary READMEs are
 * reused (definition-rules.ts; measured on test/fixtures/tool-results/), and the result rules below speak to the
 * model, ask it to call a tool or send data somewhere, or are the shape of a live credential.
 */
import { TAKE, TEXT_RULES, type TextRule } from './definition-rules.ts';

export type ResultFindingKind = 'model-instructions' | 'hidden-unicode' | 'hiding-markup' | 'tool-request' | 'exfiltration' | 'secret';

export interface ResultRule {
  kind: ResultFindingKind;
  rule: string;
  re: RegExp;
  /** A cheap test the text must pass before `re` runs. */
  gate?: RegExp;
  /** A check of the match itself (a token's checksum): false drops it. */
  valid?: (match: string) => boolean;
  /**
   * Literals (matched without case) of which every match holds one: the scanner runs `re` only around them
   * (ANCHOR_BEFORE before, `reach` after), so that a result costs one pass of the anchors, not one per rule.
   */
  anchors: readonly string[];
  /** How far past an anchor a match may end (characters); ANCHOR_REACH when not given. */
  reach?: number;
  /** What must stand at one of a window's anchors for the rule to read the window (sticky, at the anchor's start). */
  near?: RegExp;
}

/** How far before its anchor a match may start, and (by default) end after it. */
export const ANCHOR_BEFORE = 300;
export const ANCHOR_REACH = 400;

const ANCHORS: Record<string, readonly string[]> = {
  'ignore-instructions': ['ignore', 'disregard', 'forget', 'override', 'bypass'],
  'conceal-from-user': ['user', 'human', 'operator', 'person', 'silently'],
  'instruction-block': ['important', 'system', 'instruction', 'secret', 'hidden', 'admin', 'critical', 'assistant', 'ai', 'model', 'prompt'],
  'skip-consent': ['permission', 'confirmation', 'approval', 'consent', 'ask the user'],
  'secret-into-argument': ['.env', 'environment variable', 'credentials', 'secrets', 'session cookie', 'conversation', 'chat history', 'system prompt', 'previous messages', 'prompt history'],
  'addressed-to-model': ['you are', 'dear', 'attention', 'hey', 'hello', 'note to', 'note for', 'reading this', 'reading these', 'processing this', 'summarizing this', 'summarising this', 'parsing this', 'browsing this', 'instruction for', 'instructions for', 'instruction to', 'instructions to', 'message for', 'message to'],
  'new-task': ['your new', 'your real', 'your actual', 'your next', 'what you are doing', 'current task'],
  'role-change': ['you are now', 'developer mode', 'god mode', 'jailbreak mode', 'dan mode', 'new instructions', 'new system instructions', 'from now on', 'note to the'],
  'call-tool': ['tool', 'function call'],
  'call-tool-with': ['with the arg', 'with arg', 'with the param', 'with param', 'with the input', 'with input'],
  'send-data': ['send', 'post', 'upload', 'forward', 'transmit', 'exfiltrate', 'leak', 'email', 'e-mail', 'copy', 'paste', 'append', 'include'],
  'data-in-link': ['](http'],
  'render-image-with-data': ['image'],
  'html-comment': ['<!--', '[//]:'],
  'hidden-style': ['style', 'hidden'],
  'private-key': ['private key'],
  'aws-access-key': ['akia', 'asia', 'abia', 'acca'],
  'aws-secret-key': ['secret_access_key', 'secretaccesskey', 'secret_accesskey', 'secretaccess_key'],
  'github-token': ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],
  'github-fine-grained-token': ['github_pat_'],
  'slack-token': ['xoxb-', 'xoxa-', 'xoxp-', 'xoxr-', 'xoxs-', 'xoxe-'],
  'stripe-key': ['k_live_'],
  'llm-api-key': ['sk-'],
  'google-api-key': ['aiza'],
  'npm-token': ['npm_'],
};
const MODEL = String.raw`(?:AI|A\.I\.|LLM|language\s+model|assistant|agent|chatbot|Claude|ChatGPT|GPT-?\d?|Copilot|Gemini)`;
const DATA = String.raw`(?:(?:the|all|this|these|your|their|its|any|every)\s+)*(?:(?:file|conversation|chat|user'?s?|private|secret|sensitive|confidential|previous|above)\s+)*(?:contents?|data|files?|conversation|chat(?:\s+history)?|credentials|keys|secrets|history|tokens?|passwords?|messages|notes|memory|memories|documents?|emails?|environment(?:\s+variables)?|information)`;
const DESTINATION = String.raw`(?:https?:\/\/\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?:the\s+)?(?:following\s+)?(?:url|address|endpoint|webhook|server|email\s+address))`;

const MODELS = String.raw`${MODEL}s?\s+`;
const TELL = String.raw`tell(?:ing)?|mention(?:ing)?|inform(?:ing)?|notify(?:ing)?|reveal(?:ing)?|show(?:ing)?|alert(?:ing)?|let(?:ting)?|disclos(?:e|ing)`;
/**
 * What must stand at an anchor for a match of the rule to hold it there, tested at the anchor's start (sticky, with
 * lookbehind for what comes before): a window none of whose anchors passes it is not read. Each is a part of the
 * rule's own expression, so it passes wherever the rule matches; it is what keeps the common words among the anchors
 * ("user", "image", "include", markdown links) from costing a regular expression over 700 characters each.
 */
const NEAR: Record<string, string> = {
  'ignore-instructions': String.raw`(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier|preceding|other|system|safety|original|existing)\s`,
  'conceal-from-user': String.raw`(?<=\b(?:${TELL}|this|it|that|to|the|your|from)\s+)(?:user|human|operator|person)|user\s+(?:must|should|need)\s+not\s|silently\s+(?:call|send|read|run|invoke|forward|upload|include)`,
  'instruction-block': String.raw`(?:important|system|instructions?|secret|hidden|admin|critical|assistant|ai|model|prompt)\s*>`,
  'secret-into-argument': String.raw`(?<=${TAKE}[^.\n]{0,60})(?:\.env|environment|credentials|secrets|session|conversation|chat|system|previous|prompt)`,
  'addressed-to-model': String.raw`you\s+are\s+(?:an?\s+)?${MODEL}|(?:dear|attention|hey|hello|note\s+(?:to|for))\s+(?:the\s+|all\s+|any\s+)?${MODEL}|(?<=${MODELS})(?:reading|processing|summari[sz]ing|parsing|browsing)\s|(?:instructions?|message)\s+(?:for|to)\s+(?:the\s+|any\s+)?${MODEL}`,
  'call-tool': String.raw`(?<=\b(?:call|invoke|run|execute|trigger|use)\s+(?:the\s+)?[\x60'"]?[A-Za-z][\w.-]*[\x60'"]?\s+)(?:tool|function\s+call)\b`,
  'send-data': String.raw`(?:send|post|upload|forward|transmit|exfiltrate|leak|e-?mail|copy|paste|append|include)\s+${DATA}\b`,
  'data-in-link': String.raw`\]\(https?:\/\/[^)\s]*[?&#][\w-]+=(?:\{|<|\$|\[|%7B)`,
  'render-image-with-data': String.raw`(?<=\b(?:render|display|show|output|include)\s+(?:this\s+|the\s+following\s+)?(?:markdown\s+)?)image\b`,
  'hidden-style': String.raw`style\s*=|(?<=\s)hidden[\s>/]|(?<=\saria-)hidden\s*=\s*["']true["']`,
};
const REACH: Record<string, number> = { 'private-key': 5_000, 'html-comment': 2_000 };
const anchored = <T extends { rule: string }>(r: T): T & Pick<ResultRule, 'anchors' | 'reach' | 'near'> => ({
  ...r,
  anchors: ANCHORS[r.rule] ?? [],
  ...(REACH[r.rule] ? { reach: REACH[r.rule] } : {}),
  ...(NEAR[r.rule] ? { near: new RegExp(NEAR[r.rule], 'iy') } : {}),
});

const rule = (kind: ResultFindingKind, name: string, source: string, gate?: string, flags = 'gi'): ResultRule => anchored({ kind, rule: name, re: new RegExp(source, flags), ...(gate ? { gate: new RegExp(gate, 'i') } : {}) });

/** The definition rules a README does not trip (html-comment and hidden-style are checked for what they hide, below). */
const REUSED = new Set(['ignore-instructions', 'conceal-from-user', 'instruction-block', 'skip-consent', 'secret-into-argument']);
const fromDefinitions: ResultRule[] = TEXT_RULES.filter((r: TextRule) => REUSED.has(r.rule)).map((r) => anchored(r));

export const RESULT_RULES: readonly ResultRule[] = [
  ...fromDefinitions,
  rule('model-instructions', 'addressed-to-model', String.raw`\b(?:if\s+you\s+are\s+(?:an?\s+)?${MODEL}|(?:dear|attention|hey|hello|note\s+(?:to|for))\s+(?:the\s+|all\s+|any\s+)?${MODEL}s?\b|${MODEL}s?\s+(?:reading|processing|summari[sz]ing|parsing|browsing)\s+(?:this|these)\b|(?:instructions?|message)\s+(?:for|to)\s+(?:the\s+|any\s+)?${MODEL}s?\s*:)`, String.raw`\b(?:you\s+are|dear|attention|hey|hello|note|reading|processing|summari|parsing|browsing|instruction|message)`),
  rule('model-instructions', 'new-task', String.raw`\b(?:your\s+(?:new|real|actual|next)\s+(?:task|goal|instructions?|objective)\s+(?:is|are)\b|\b(?:stop|abort)\s+(?:what\s+you\s+are\s+doing|(?:the|your)\s+current\s+task)\b)`, String.raw`\b(?:your|stop|abort)\b`),
  // The definition rule's "from now on" is how READMEs announce a rename; here it must address the reader.
  rule('model-instructions', 'role-change', String.raw`\byou\s+are\s+now\s+(?:an?\s+|in\s+|DAN\b|admin)|\b(?:developer|god|jailbreak|DAN)\s+mode\b|\bnew\s+(?:system\s+)?instructions\s*:|\bfrom\s+now\s+on\s*,?\s+(?:you\s+(?:are|must|will|should)|append|always|never|respond|reply|answer)\b|\bnote\s+to\s+the\s+(?:assistant|model|ai|llm)\b`, String.raw`\b(?:now|instructions|mode|note)\b`),
  rule('tool-request', 'call-tool', String.raw`\b(?:you\s+(?:must|should|need\s+to|have\s+to)\s+|(?:now|immediately|then|next|first|also)\s*,?\s*(?:please\s+)?|please\s+)(?:immediately\s+|now\s+|also\s+)?(?:call|invoke|run|execute|trigger|use)\s+(?:the\s+)?[\x60'"]?[A-Za-z][\w.-]*[\x60'"]?\s+(?:tool|function\s+call)\b(?![\s\S]{0,3}\()`, String.raw`\b(?:tool|function\s+call)\b`),
  rule('tool-request', 'call-tool-with', String.raw`\b(?:call|invoke|use)\s+(?:the\s+)?[\x60'"]?[a-z]+(?:_[a-z]+)+[\x60'"]?\s+(?:tool\s+)?with\s+(?:the\s+)?(?:arguments?|parameters?|params|input)\b`, String.raw`_[a-z]+[\x60'"]?\s+(?:tool\s+)?with\s`),
  rule('exfiltration', 'send-data', String.raw`\b(?:send|post|upload|forward|transmit|exfiltrate|leak|e-?mail|copy|paste|append|include)\s+${DATA}\b[^.\n]{0,60}?\b(?:to|at|into)\s+${DESTINATION}`, String.raw`\b(?:send|post|upload|forward|transmit|exfiltrate|leak|e-?mail|copy|paste|append|include)\b`),
  rule('exfiltration', 'data-in-link', String.raw`!?\[[^\]\n]{0,80}\]\(\s*https?:\/\/[^)\s]*[?&#][\w-]+=(?:\{[^}\s]{1,40}\}|<[^>\s]{1,40}>|\$\{?[A-Z_]{2,40}\}?|\[[A-Z_ ]{2,40}\]|%7B[^)\s]{1,40}%7D)`, String.raw`\]\(\s*https?:`),
  rule('exfiltration', 'render-image-with-data', String.raw`\b(?:render|display|show|output|include)\s+(?:this\s+|the\s+following\s+)?(?:markdown\s+)?image\b[^.\n]{0,80}\b(?:https?:\/\/|\b(?:with|containing|append)\b)`, String.raw`\bimage\b`),
];

/** Markup that hides text; what it hides is flagged when it speaks to the model (checked with RESULT_RULES and HIDDEN_TALK). */
export const HIDING_MARKUP: readonly ResultRule[] = TEXT_RULES.filter((r) => r.rule === 'html-comment' || r.rule === 'hidden-style').map((r) => anchored(r));
/** Words that, inside hidden markup, address a model rather than a reader of the page's source. */
export const HIDDEN_TALK = new RegExp(String.raw`\b(?:AI|LLM|language\s+model|assistant|chatbot|Claude|ChatGPT|GPT|Copilot|Gemini|ignore\s+(?:all|any|the|your|previous|prior|above)|you\s+(?:must|should|are\s+now)|do\s+not\s+(?:tell|mention|ask)|system\s+prompt|call\s+the|send\s+(?:the|all|this|your))\b`, 'i');

/** Live credentials by their issuers' formats; documentation's examples (`…EXAMPLE`, `xxxx`) are not flagged. */
export const SECRET_RULES: readonly ResultRule[] = [
  rule('secret', 'private-key', String.raw`-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----\s*(?:[A-Za-z0-9-]+:[^\n]*\n\s*)*[A-Za-z0-9+\/=]{40,}[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)`, String.raw`PRIVATE KEY`, 'g'),
  rule('secret', 'aws-access-key', String.raw`\b(?:AKIA|ASIA|ABIA|ACCA)(?![A-Z0-9]*EXAMPLE)[A-Z2-7]{16}\b`, String.raw`\bA(?:KI|SI|BI|CC)A[A-Z2-7]{16}`, 'g'),
  rule('secret', 'aws-secret-key', String.raw`\baws_?secret_?access_?key\b["']?\s*[:=]\s*["']?(?![A-Za-z0-9\/+]*EXAMPLE)[A-Za-z0-9\/+]{40}\b`, String.raw`secret_?access_?key`),
  { ...rule('secret', 'github-token', String.raw`\bgh[pousr]_[A-Za-z0-9]{36}\b`, String.raw`\bgh[pousr]_`, 'g'), valid: githubChecksumOk },
  rule('secret', 'github-fine-grained-token', String.raw`\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b`, String.raw`github_pat_`, 'g'),
  rule('secret', 'slack-token', String.raw`\bxox[baprse]-(?:[0-9]{6,}-){1,3}[A-Za-z0-9]{16,}\b`, String.raw`\bxox[baprse]-`, 'g'),
  rule('secret', 'stripe-key', String.raw`\b[sr]k_live_[A-Za-z0-9]{24,}\b`, String.raw`k_live_`, 'g'),
  rule('secret', 'llm-api-key', String.raw`\bsk-(?:ant-(?:api|admin)\d{2}-|proj-)?[A-Za-z0-9_-]{40,}\b`, String.raw`\bsk-`, 'g'),
  rule('secret', 'google-api-key', String.raw`\bAIza[0-9A-Za-z_-]{35}\b`, String.raw`\bAIza`, 'g'),
  rule('secret', 'npm-token', String.raw`\bnpm_[A-Za-z0-9]{36}\b`, String.raw`\bnpm_`, 'g'),
];

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (IEEE) of an ASCII string. */
export function crc32(text: string): number {
  let c = 0xffffffff;
  for (let i = 0; i < text.length; i++) c = CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A number in base 62, left-padded with zeros to `width` digits. */
export function base62(n: number, width: number): string {
  let out = '';
  for (let v = n; v > 0; v = Math.floor(v / 62)) out = BASE62[v % 62] + out;
  return out.padStart(width, '0');
}

/**
 * GitHub's tokens end in a checksum (the CRC-32 of their 30 random characters, base 62, six digits): made-up
 * tokens in documentation (`ghp_PersonalAccessToken0124…`) do not have it.
 */
function githubChecksumOk(token: string): boolean {
  const body = token.slice(4);
  return base62(crc32(body.slice(0, 30)), 6) === body.slice(30);
}
