import pino from 'pino';
import { redactArguments } from './enforcement/redact.ts';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  isLevelEnabled(level: LogLevel): boolean;
}

/**
 * The fields of every log line about a call (`callLogFields` in src/scheduler/job-log-fields.ts builds them): the job id, the
 * client's session id (absent for a call with no session, such as stdio) and the W3C trace id of its traceparent.
 */
export interface CallLogFields {
  jobId: string;
  sessionId?: string;
  traceId?: string;
}

/**
 * JSON logs on stderr, never stdout: stdout belongs to the MCP protocol in stdio mode. Secrets are redacted by
 * key name (the secret-key rule of src/enforcement/secret-keys.ts) as a last line of defence; the code's first line
 * is never to log them.
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  const base = pino(
    {
      level,
      base: { name: 'gatehouse' },
      redact: { paths: ['*.authorization', '*.Authorization', '*.apiKey', '*.token', '*.key', 'headers.*'], censor: '[redacted]' },
      // The same secret-key rule as recorded arguments, at any depth of a line's fields (only lines that are written).
      formatters: { log: (fields) => redactArguments(fields) },
    },
    pino.destination({ fd: 2, sync: false }),
  );
  const at =
    (method: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (fields) base[method](fields, msg);
      else base[method](msg);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    isLevelEnabled: (l) => base.isLevelEnabled(l),
  };
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  isLevelEnabled: () => false,
};
