import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { GatewayError } from '../../errors.ts';
import type { ToolFacts } from '../tool-facts.ts';
import type { ToolAnnotations } from '../../protocol/mcp.ts';
import type { DecisionInput } from '../decision.ts';

/** Where a gateway records its catalog's tool facts, in its data dir. */
export const CATALOG_FILE = 'catalog.json';

export const catalogFile = (dataDir: string): string => join(dataDir, CATALOG_FILE);

const recordedToolSchema = z.object({
  server: z.string(),
  /** As the catalog has them, whatever the upstream put there: the kernel reads them the same way live. */
  annotations: z.record(z.string(), z.unknown()).optional(),
  riskTags: z.array(z.string()),
  labels: z.record(z.string(), z.string()),
  upstreamUrl: z.string().optional(),
  /** The pinned definition's digest, to tell which version of the tool the facts are of. */
  digest: z.string(),
});

const recordedCatalogSchema = z.object({
  version: z.literal(1),
  /** When the catalog was recorded (ms since the epoch). */
  recordedAt: z.number(),
  /** By namespaced tool name, `<server>__<tool>`: what policies match. */
  tools: z.record(z.string(), recordedToolSchema),
  /** By upstream: the serverInfo it answered initialize with (what `pack add` checks a pack's match against). */
  servers: z.record(z.string(), z.object({ name: z.string(), version: z.string().optional() })).default({}),
});

export type RecordedTool = z.infer<typeof recordedToolSchema>;

/**
 * The tool facts a gateway decides on (its catalog's: the upstream's annotations with the config's overrides,
 * the declared risk tags, the upstream's labels and an HTTP upstream's URL origin), as it records them for the
 * CLI's `policy explain` and `policy test` when no gateway is there to ask. Small, and free of secrets.
 */
export type RecordedCatalog = z.infer<typeof recordedCatalogSchema>;

/** What is recorded of each catalog tool: its policy name, upstream, pinned digest and facts. */
export interface CatalogTool {
  id: string;
  server: string;
  digest: string;
  facts: ToolFacts;
}

export function recordCatalog(entries: readonly CatalogTool[], at: number, servers: RecordedCatalog['servers'] = {}): RecordedCatalog {
  const tools: Record<string, RecordedTool> = {};
  for (const { id, server, digest, facts } of [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    tools[id] = { server, ...(facts.annotations ? { annotations: { ...facts.annotations } } : {}), riskTags: facts.riskTags, labels: facts.labels, ...(facts.upstreamUrl ? { upstreamUrl: facts.upstreamUrl } : {}), digest };
  }
  return { version: 1, recordedAt: at, tools, servers };
}

/**
 * The catalog recorded in a data dir; undefined when none was (no gateway ever ran there). A file that is not a
 * recorded catalog is GH_ERR_DATA_CORRUPT, naming the file.
 */
export function readRecordedCatalog(dataDir: string): RecordedCatalog | undefined {
  const file = catalogFile(dataDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GatewayError('GH_ERR_DATA_CORRUPT', `${file}: cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new GatewayError('GH_ERR_DATA_CORRUPT', `${file}: not JSON (${(err as Error).message}); a running gateway writes it anew when its tools change`, { cause: err });
  }
  const result = recordedCatalogSchema.safeParse(parsed);
  if (!result.success) throw new GatewayError('GH_ERR_DATA_CORRUPT', `${file}: not a recorded catalog (${result.error.issues[0].path.join('.')}: ${result.error.issues[0].message})`);
  return result.data;
}

/**
 * The facts of one tool as recorded; for a resource or prompt request, its upstream's (labels and URL, no tool
 * facts), read from any of that upstream's tools.
 */
export function recordedFacts(catalog: RecordedCatalog, call: Pick<DecisionInput, 'tool' | 'server' | 'kind'>): ToolFacts | undefined {
  if (call.kind) {
    const tool = Object.values(catalog.tools).find((t) => t.server === call.server);
    return tool && { annotations: undefined, riskTags: [], labels: tool.labels, ...(tool.upstreamUrl ? { upstreamUrl: tool.upstreamUrl } : {}) };
  }
  const recorded = catalog.tools[call.tool];
  if (!recorded) return undefined;
  return { annotations: recorded.annotations as ToolAnnotations | undefined, riskTags: recorded.riskTags, labels: recorded.labels, ...(recorded.upstreamUrl ? { upstreamUrl: recorded.upstreamUrl } : {}) };
}
