import { GatewayError } from '../errors.ts';

const REFERENCE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces `${env:NAME}` in every string of a parsed config, so secrets stay out of files. A missing variable
 * is an error naming the key path: silently using an empty API key would be worse than not starting.
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, path: (string | number)[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (_all, name: string) => {
      const found = env[name];
      if (found === undefined) {
        throw new GatewayError('GH_ERR_CONFIG_INVALID', `${formatPath(path)}: environment variable ${name} is not set`, {
          data: { path, variable: name },
        });
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolateEnv(item, env, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = interpolateEnv(item, env, [...path, key]);
    return out;
  }
  return value;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}
