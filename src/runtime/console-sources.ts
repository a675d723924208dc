import type { AuditStore, JobLedger, Upstream } from '../ports.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { ToolCatalog } from '../call/catalog.ts';
import type { ConsoleSources } from '../api/console/sources.ts';
import { ChainStatus } from '../audit/chain-status.ts';
import { auditSigningKey } from './audit-signing.ts';

export interface ConsoleSourceParts {
  config: GatehouseConfig;
  upstreams: () => Upstream[];
  restarts: ReadonlyMap<string, number>;
  catalog: Pick<ToolCatalog, 'entries'>;
  /** Newest first: the Redis list in distributed mode, the chain files in embedded mode. */
  reader?: Pick<AuditStore, 'readBack'>;
  /** The whole chains, to verify (embedded mode). */
  chains?: AuditStore;
  ledger?: JobLedger;
  now: () => number;
}

/** The console pages' view of a running gateway, built once (the chain status keeps its last verification). */
export function consoleSources(parts: ConsoleSourceParts): ConsoleSources {
  const { config, chains, ledger } = parts;
  const keys = config.auth?.apiKeys ?? [];
  return {
    ...(parts.reader ? { records: parts.reader } : {}),
    upstreams: () =>
      parts.upstreams().map((u) => ({
        name: u.name,
        state: u.state,
        restarts: parts.restarts.get(u.name) ?? 0,
        ...(u.failure ? { failure: u.failure.message } : {}),
        ...(u.pool ? { pool: u.pool } : {}),
      })),
    tools: () => parts.catalog.entries(),
    principals: (tenant) => [...new Set(keys.filter((k) => k.tenant === tenant).map((k) => k.principal))].sort(),
    ...(chains ? { chain: new ChainStatus(chains, async () => (await auditSigningKey(config, false))?.publicKey, parts.now) } : {}),
    ...(ledger ? { deadLetters: async () => (await ledger.listDead()).length } : {}),
  };
}
