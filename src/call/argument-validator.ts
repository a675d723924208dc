import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ValidateFunction } from 'ajv';

// ajv ships CommonJS with its classes on `.default`; require sidesteps the ESM interop differences.
const require = createRequire(import.meta.url);
const Draft7 = (require('ajv') as { default: typeof AjvClass }).default;
const Draft2020 = (require('ajv/dist/2020') as { default: typeof AjvClass }).default;

/**
 * `format` is an annotation, not an assertion, in JSON Schema 2020-12 (and optional in draft-07): whether a string is a
 * good URI or date is the upstream's to judge, as it would be without Gatehouse. Ignoring formats also keeps ajv from
 * warning on stderr (`unknown format "uri" ignored`), where only JSON log lines belong. No new dependency needed.
 */
const OPTIONS = { strict: false, allErrors: false, validateSchema: false, validateFormats: false } as const;
const draft7 = new Draft7(OPTIONS);
const draft2020 = new Draft2020(OPTIONS);

export type ArgumentCheck = (args: Record<string, unknown>) => string | undefined;

/**
 * Compiles a tool's inputSchema into a check that returns undefined for valid arguments, or a message naming
 * the offending field. MCP's default dialect is JSON Schema 2020-12; schemas that declare draft-07 get that.
 * A schema ajv cannot compile yields no check: the upstream stays the judge of its own broken schema.
 */
export function compileArgumentCheck(schema: Record<string, unknown>): ArgumentCheck | undefined {
  let validate: ValidateFunction;
  try {
    const dialect = typeof schema.$schema === 'string' && schema.$schema.includes('draft-07') ? draft7 : draft2020;
    validate = dialect.compile(schema);
  } catch {
    return undefined;
  }
  return (args) => {
    if (validate(args)) return undefined;
    const error = validate.errors?.[0];
    if (!error) return 'the arguments do not match the input schema';
    const missing = (error.params as { missingProperty?: string }).missingProperty;
    const extra = (error.params as { additionalProperty?: string }).additionalProperty;
    const path = error.instancePath ? error.instancePath.slice(1).replace(/\//g, '.') : '';
    const field = missing ? [path, missing].filter(Boolean).join('.') : extra ? [path, extra].filter(Boolean).join('.') : path || '(arguments)';
    return `${field}: ${extra ? 'is not an allowed property' : error.message ?? 'is invalid'}`;
  };
}
