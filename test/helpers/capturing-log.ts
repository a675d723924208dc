import type { Logger } from '../../src/log.ts';

export interface CapturedLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every line, fields and all; `text()` is every line as JSON, for "never logged" checks. */
export function recordingLogger(): Logger & { lines: CapturedLine[]; text(): string } {
  const lines: CapturedLine[] = [];
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  return {
    lines,
    text: () => lines.map(({ level, msg, fields }) => JSON.stringify({ level, msg, ...fields })).join('\n'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    isLevelEnabled: () => true,
  };
}
