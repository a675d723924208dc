import { sha256Hex } from '../protocol/digest.ts';

export const SEPARATOR = '__';
const MAX_LENGTH = 64;
const INVALID = /[^a-zA-Z0-9_-]/g;

/**
 * The name a client sees for an upstream's tool: `<upstream>__<tool>`, kept inside `^[a-zA-Z0-9_-]{1,64}$`,
 * which LLM APIs accept. Characters outside it become `_`; a name too long keeps its start and gains a short
 * hash of the original, so two long names never collapse into one.
 */
export function namespacedName(server: string, tool: string): string {
  const plain = `${server}${SEPARATOR}${tool}`;
  const clean = plain.replace(INVALID, '_');
  if (clean === plain && clean.length <= MAX_LENGTH) return clean;
  const hash = sha256Hex(plain).slice(0, 8);
  return `${clean.slice(0, MAX_LENGTH - hash.length - 1)}_${hash}`;
}

export const NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

/** The name clients see: namespaced, or the upstream's own name for an upstream configured with `namespace: false`. */
export function exposedName(server: string, name: string, namespaced: boolean): string {
  return namespaced ? namespacedName(server, name) : name;
}
