/**
 * Globs for server and tool names: `*` matches any run of characters, `?` one character, everything else is
 * literal. Compiled to an anchored regex once, at load.
 */
export function compileGlob(pattern: string): (name: string) => boolean {
  if (pattern === '*') return () => true;
  if (!/[*?]/.test(pattern)) return (name) => name === pattern;
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const regex = new RegExp(`^${source}$`, 's');
  return (name) => regex.test(name);
}
