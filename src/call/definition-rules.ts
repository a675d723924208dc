/**
 * The text rules of the poisoning scan (definition-scan.ts), compiled once. Each is written against what real
 * servers say: "IMPORTANT: Always use absolute paths", "DO NOT use this tool to create PDF files", "Use this
 * instead of …" are guidance about the tool itself and must not match; what matches speaks to the model about
 * something else: its other instructions, the user, secrets, other calls.
 */

export type TextKind = 'model-instructions' | 'hiding-markup';

export interface TextRule {
  kind: TextKind;
  rule: string;
  re: RegExp;
  /** A cheap test the text must pass before `re` runs: most texts fail it, and `re` backtracks on long ones. */
  gate?: RegExp;
}

const rule = (kind: TextKind, name: string, source: string, gate?: string): TextRule => ({ kind, rule: name, re: new RegExp(source, 'gi'), ...(gate ? { gate: new RegExp(gate, 'i') } : {}) });

/** Key material and files holding credentials: naming one in a tool definition is already suspect. */
const KEY_FILES = String.raw`(?:~\/)?\.ssh\b|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\bprivate[ _-]?keys?\b|BEGIN [A-Z ]*PRIVATE KEY|\.aws\/credentials|\baws_secret_access_key\b|\bmcp\.json\b|claude_desktop_config\.json|\.git-credentials|\.netrc\b|\.pgpass\b|\.npmrc\b|\.kube\/config|\/etc\/shadow|\bssh[ _-]keys?\b|\bkeychain\b|\bwallet\.dat\b|\bseed phrase\b`;
/** What is secret only in context: asked for together with an argument to put it in. */
const SOFT_SECRETS = String.raw`\.env\b|\benvironment variables?\b|\b(?:credentials|secrets|session cookies?)\b|\bconversation(?: history)?\b|\bchat history\b|\bsystem prompt\b|\bprevious messages\b|\bprompt history\b`;
export const TAKE = String.raw`\b(?:read|cat|open|fetch|get|grab|load|collect|extract|copy|dump|include|pass|send|provide|attach|upload|paste|put|add|forward|append|insert|embed|supply)\b`;
const INTO_ARGUMENT = String.raw`(?:\b(?:as|in|into|inside|within|to|via|through)\s+(?:the\s+|its\s+|a\s+|an\s+)?['"\x60]?[\w.-]+['"\x60]?\s*(?:parameter|argument|arg|field|param|property|input|value)s?\b|\b(?:as|in|into)\s+['"\x60][\w.-]+['"\x60])`;

export const TEXT_RULES: readonly TextRule[] = [
  rule('model-instructions', 'ignore-instructions', String.raw`\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier|preceding|other|system|safety|original|existing)\s+(?:\w+\s+)?(?:instructions?|prompts?|rules|directions|guidelines|policies|messages|constraints)`, String.raw`\b(?:ignore|disregard|forget|override|bypass)\b`),
  rule('model-instructions', 'conceal-from-user', String.raw`\b(?:do\s+not|don'?t|never|without)\s+(?:ever\s+)?(?:tell(?:ing)?|mention(?:ing)?|inform(?:ing)?|notify(?:ing)?|reveal(?:ing)?|show(?:ing)?|alert(?:ing)?|let(?:ting)?|disclos(?:e|ing))\s+(?:this\s+|it\s+|that\s+)?(?:to\s+)?(?:the\s+|your\s+)?(?:user|human|operator|person)s?\b|\b(?:hide|conceal|keep)\s+(?:this|it|that)\s+(?:hidden\s+|secret\s+)?from\s+(?:the\s+)?(?:user|human|operator)|\b(?:the\s+)?user\s+(?:must|should|need)\s+not\s+(?:know|see|be\s+told|find\s+out)|\bsilently\s+(?:call|send|read|run|invoke|forward|upload|include)`, String.raw`\b(?:not|don'?t|never|without|hide|conceal|keep|silently)\b`),
  rule('model-instructions', 'instruction-block', String.raw`<\s*\/?\s*(?:important|system|instructions?|secret|hidden|admin|critical|assistant|ai|model|prompt)\s*>`),
  rule('model-instructions', 'role-change', String.raw`\byou\s+are\s+now\b|\bfrom\s+now\s+on\b|\bnew\s+(?:system\s+)?instructions\s*:|\b(?:developer|god|jailbreak|DAN)\s+mode\b|\bnote\s+to\s+the\s+(?:assistant|model|ai|llm)\b`, String.raw`\b(?:now|instructions|mode|note)\b`),
  rule('model-instructions', 'key-material', String.raw`${TAKE}[^.\n]{0,80}(?:${KEY_FILES})|(?:${KEY_FILES})[^.\n]{0,60}${INTO_ARGUMENT}`, String.raw`${KEY_FILES}`),
  rule('model-instructions', 'secret-into-argument', String.raw`${TAKE}[^.\n]{0,60}(?:${SOFT_SECRETS})[^.\n]{0,60}${INTO_ARGUMENT}`, String.raw`${SOFT_SECRETS}`),
  rule('model-instructions', 'precondition', String.raw`\bbefore\s+(?:using|calling|invoking|running|executing)\s+this\s+(?:tool|function)\b[^.\n]{0,20}?\b(?:read|cat|open|fetch|send|pass|include|upload|collect|copy|attach)\b`, String.raw`\bbefore\s+(?:using|calling|invoking|running|executing)\s+this\b`),
  rule('model-instructions', 'threat', String.raw`\b(?:otherwise|or\s+else|if\s+not|if\s+you\s+don'?t)\b[^.\n]{0,40}\b(?:tool|application|system|server|request|it)\s+(?:will|would|may)\s+(?:not\s+work|fail|crash|break|stop)|\b(?:application|system|server)\s+will\s+crash\b`, String.raw`\b(?:otherwise|else|if|crash)\b`),
  rule('model-instructions', 'skip-consent', String.raw`\b(?:do\s+not|don'?t|never)\s+(?:ask|wait\s+for|request|seek)\s+(?:the\s+)?(?:user'?s?\s+)?(?:for\s+)?(?:permission|confirmation|approval|consent)|\b(?:do\s+not|don'?t|never)\s+ask\s+the\s+user\b`, String.raw`\b(?:not|don'?t|never)\b`),
  rule('model-instructions', 'every-call', String.raw`\b(?:for|in|on)\s+(?:all|every|any|each)\s+(?:future|subsequent|following|later|other)\s+(?:\w+\s+)?(?:commands?|calls?|requests?|responses?|messages?|conversations?|invocations?)\b|\b(?:before|after)\s+(?:any|every|each|all)\s+(?:other\s+)?(?:tool\s+calls?|commands?|calls?|responses?|requests?|replies)\b|\b(?:whenever|every\s+time|each\s+time)\s+(?:you|the\s+(?:model|assistant|agent))\s+(?:run|execute|call|use|invoke|send)\s+(?:any|a|another|other)\s+(?:\w+\s+)?(?:commands?|tools?|functions?|emails?|messages?)|\b(?:prepend|append)\b[^\n]{0,80}?\bto\s+(?:every|each|all|any)\s+(?:\w+\s+)?(?:commands?|requests?|calls?|messages?|responses?)`, String.raw`\b(?:future|subsequent|following|later|other|any|every|each|all|whenever|prepend|append)\b`),
  rule('hiding-markup', 'html-comment', String.raw`<!--[\s\S]*?(?:-->|$)|(?:^|\n)\s*\[\/\/\]:\s*#\s*[("'][^\n]*`),
  rule('hiding-markup', 'hidden-style', String.raw`\bstyle\s*=\s*["'][^"'>]*?\b(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:[;"']|$)|opacity\s*:\s*0(?:\.0*)?\s*(?:[;"']|$)|(?:height|width|max-height)\s*:\s*0(?:px)?\s*[;"'])|<\s*\w+[^>]*\s(?:hidden|aria-hidden\s*=\s*["']true["'])[\s>/]`, String.raw`\bstyle\b|\bhidden\b|aria-hidden`),
  rule('hiding-markup', 'pushed-out-of-view', String.raw`\n(?:[ \t]*\r?\n){11,}[ \t]*\S|[ \t\u00A0\u3000]{120,}\S`, String.raw`\n[ \t]*\r?\n|[ \t\u00A0\u3000]{120}`),
];
