const REFERENCE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** A `${env:NAME}` whose variable is not set, and the key path where it was written. */
export interface UnsetVariable {
  path: (string | number)[];
  variable: string;
}

/**
 * Replaces `${env:NAME}` in every string of a parsed config, so secrets stay out of files, and lists every
 * reference to a variable that is not set (each is a mistake: silently using an empty API key would be worse than
 * not starting). Such a reference is left as written.
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv): { value: unknown; unset: UnsetVariable[] } {
  const unset: UnsetVariable[] = [];
  const walk = (item: unknown, path: (string | number)[]): unknown => {
    if (typeof item === 'string') {
      return item.replace(REFERENCE, (all, name: string) => {
        const found = env[name];
        if (found !== undefined) return found;
        unset.push({ path, variable: name });
        return all;
      });
    }
    if (Array.isArray(item)) return item.map((element, i) => walk(element, [...path, i]));
    if (item !== null && typeof item === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, element] of Object.entries(item)) out[key] = walk(element, [...path, key]);
      return out;
    }
    return item;
  };
  return { value: walk(value, []), unset };
}
