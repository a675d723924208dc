import type { ToolFacts } from '../tool-facts.ts';
import type { RecordedCatalog } from './recorded-catalog.ts';
import { recordedFacts } from './recorded-catalog.ts';
import { statedFacts, type StatedCall } from './call.ts';

/** Where the tool facts of an explained call came from, so that the author knows what the answer rests on. */
export type FactsSource =
  /** The live catalog of the gateway that answers (its own explain API). */
  | { from: 'catalog' }
  /** The live catalog of a running gateway the CLI asked. */
  | { from: 'gateway'; url: string }
  /** The catalog a gateway recorded in its data dir; `unanswered` says why no running gateway was asked. */
  | { from: 'recorded'; file: string; recordedAt: number; unanswered?: string }
  /** In no catalog: the call's own stated facts (or none) are all there is. */
  | { from: 'call'; why: string };

export interface FactsNote {
  source: FactsSource;
  /** The facts the call states itself, which win over the source's. */
  stated: string[];
}

/** Facts found in a catalog (`source`), or not (`missing` says why), for one call. */
export function factsNote(call: StatedCall, found: boolean, source: FactsSource, missing: string): FactsNote {
  return { source: found ? source : { from: 'call', why: missing }, stated: statedFacts(call) };
}

/** The facts of a tool from a recorded catalog, with where they came from (or why they did not). */
export function factsFromRecorded(call: StatedCall, catalog: RecordedCatalog | undefined, file: string): { facts: ToolFacts | undefined; note: FactsNote } {
  const facts = catalog && recordedFacts(catalog, call);
  const missing = catalog ? `${call.tool} is not in the catalog recorded in ${file}` : `no gateway has recorded its catalog in ${file}`;
  return { facts, note: factsNote(call, facts !== undefined, { from: 'recorded', file, recordedAt: catalog?.recordedAt ?? 0 }, missing) };
}

/** One line for a human: where the facts came from, and which the call overrides. */
export function describeFacts({ source, stated }: FactsNote): string {
  const overrides = stated.length > 0 ? `; the call states ${stated.join(', ')}, which win` : '';
  switch (source.from) {
    case 'catalog':
      return `tool facts from the gateway's live catalog${overrides}`;
    case 'gateway':
      return `tool facts from the running gateway at ${source.url} (its live catalog)${overrides}`;
    case 'recorded':
      return `tool facts from the catalog recorded in ${source.file} at ${new Date(source.recordedAt).toISOString()}${source.unanswered ? ` (${source.unanswered})` : ''}${overrides}`;
    case 'call':
      return `tool facts: ${source.why}; deciding on the facts the call states (${stated.length > 0 ? stated.join(', ') : 'none'})`;
  }
}
