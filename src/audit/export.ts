import type { AuditRecord, ChainHead } from '../protocol/audit-record.ts';
import { GatewayError } from '../errors.ts';

/**
 * An export is the chains' records as JSON lines, each tenant's chain followed by its head line:
 * `{"gatehouseExportHead":{"tenant","seq","hash","recordedHead"}}`, the newest record exported and the head the
 * store kept apart from the chain then. A key no record has, so no record reads as a head line. An export cut at
 * its end loses a head line first, so one without it is not whole.
 */
export const HEAD_KEY = 'gatehouseExportHead';

/**
 * Before a chain whose oldest records retention removed: `{"gatehouseExportAnchor": record}`, the signed checkpoint
 * its first exported record links to (see `AuditStore.anchor`).
 */
export const ANCHOR_KEY = 'gatehouseExportAnchor';

export function exportAnchorLine(anchor: AuditRecord): string {
  return JSON.stringify({ [ANCHOR_KEY]: anchor });
}

export interface ExportHead extends ChainHead {
  tenant: string;
  recordedHead?: ChainHead;
}

export function exportHeadLine(head: ExportHead): string {
  return JSON.stringify({ [HEAD_KEY]: head });
}

/** One tenant's chain as an export holds it. */
export interface ExportedChain {
  records: AuditRecord[];
  head?: ExportHead;
  anchor?: AuditRecord;
}

/** Reads an export: records by tenant, in file order, and each tenant's head line. */
export function parseExport(text: string, file: string): Map<string, ExportedChain> {
  const chains = new Map<string, ExportedChain>();
  const chainOf = (tenant: string) => {
    let chain = chains.get(tenant);
    if (!chain) chains.set(tenant, (chain = { records: [] }));
    return chain;
  };
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    let value: AuditRecord & { [HEAD_KEY]?: ExportHead; [ANCHOR_KEY]?: AuditRecord };
    try {
      value = JSON.parse(line) as typeof value;
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `${file}:${i + 1} is not valid JSON`, { cause: err, data: { path: file, line: i + 1 } });
    }
    const head = value[HEAD_KEY];
    const anchor = value[ANCHOR_KEY];
    if (head) chainOf(head.tenant).head = head;
    else if (anchor) chainOf(anchor.tenant).anchor = anchor;
    else chainOf(value.tenant).records.push(value);
  }
  return chains;
}
