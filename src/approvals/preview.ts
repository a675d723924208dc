const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|authori[sz]ation|cookie|credential|private[-_]?key/i;
const MAX_PREVIEW = 600;

/**
 * A short rendering of the arguments for the human deciding. Values under keys that look secret are masked:
 * approval records are readable by every approver and must not become a place where secrets leak.
 */
export function previewArguments(args: Record<string, unknown>): string {
  const text = JSON.stringify(args, (key, value) => (key && SECRET_KEY.test(key) ? '[redacted]' : value));
  return text.length > MAX_PREVIEW ? `${text.slice(0, MAX_PREVIEW)}… (${text.length} chars)` : text;
}
