import type { JsonRpcErrorObject } from './jsonrpc.ts';

/** The 2026-07-28 tasks extension (SEP-2663): its id in `capabilities.extensions`. */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

/** The error code of an upstream that needs a capability the request did not declare (here: the extension). */
const MISSING_CAPABILITY = -32021;

/** Whether the client declared the tasks extension (on the 2026-07-28 wire: in this request's envelope). */
export function declaresTasks(capabilities: Record<string, unknown>): boolean {
  const extensions = capabilities.extensions as Record<string, unknown> | undefined;
  return extensions !== null && typeof extensions === 'object' && extensions[TASKS_EXTENSION] !== undefined;
}

/** The capabilities without the extension: what an upstream hears when it must answer a call whole. */
export function withoutTasks(capabilities: Record<string, unknown>): Record<string, unknown> {
  if (!declaresTasks(capabilities)) return capabilities;
  const { [TASKS_EXTENSION]: _tasks, ...extensions } = capabilities.extensions as Record<string, unknown>;
  return { ...capabilities, extensions };
}

/** -32021: the client must declare the extension to use these methods. */
export const missingTasksExtension = (): JsonRpcErrorObject => ({
  code: MISSING_CAPABILITY,
  message: `Missing required client capability: extensions["${TASKS_EXTENSION}"]`,
  data: { requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } },
});

/** Whether an upstream's error says the call can only run as a task. */
export const requiresTask = (error: JsonRpcErrorObject): boolean =>
  error.code === MISSING_CAPABILITY && JSON.stringify(error.data ?? {}).includes(TASKS_EXTENSION);
