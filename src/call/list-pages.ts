import type { Upstream } from '../ports.ts';

/** No upstream lists more pages than this; a cursor that never ends is cut off here. */
const MAX_PAGES = 100;

/** Reads every page of a paginated MCP list (`tools/list`, `resources/list` …) and returns the items under `key`. */
export async function listAllPages<T = Record<string, unknown>>(upstream: Upstream, method: string, key: string, timeoutMs: number): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result = await upstream.request(method, cursor ? { cursor } : undefined, { timeoutMs });
    items.push(...((result[key] as T[]) ?? []));
    cursor = typeof result.nextCursor === 'string' && result.nextCursor ? result.nextCursor : undefined;
    if (!cursor) break;
  }
  return items;
}
