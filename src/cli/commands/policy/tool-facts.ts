import type { ToolFacts } from '../../../call/catalog.ts';
import type { ToolAnnotations } from '../../../protocol/mcp.ts';
import type { DefinitionChange } from '../../../kernel/decision.ts';
import { targetSpec, type StatedCall } from '../../../kernel/authoring/call.ts';
import { catalogFile, readRecordedCatalog } from '../../../kernel/authoring/recorded-catalog.ts';
import { factsFromRecorded, factsNote, type FactsNote } from '../../../kernel/authoring/facts-source.ts';
import type { GatewayConfigFacts } from './sources.ts';

/** How long the CLI waits for a running gateway before it falls back to the recorded catalog (ms). */
const ASK_TIMEOUT_MS = 3_000;

/**
 * The tool facts a call is decided on, as the live gateway has them: asked of the gateway the config describes
 * when it runs (its explain API, which the local user may use on loopback), else read from the catalog it
 * recorded in its data dir. Without a config there is neither, and only the facts the call states count.
 */
export async function toolFactsFor(call: StatedCall, config: Pick<GatewayConfigFacts, 'dataDir' | 'http'> | undefined): Promise<{ facts: ToolFacts | undefined; note: FactsNote }> {
  if (!config) return { facts: undefined, note: factsNote(call, false, { from: 'catalog' }, 'no config (--config, or ./gatehouse.yaml) or --data-dir names a gateway to ask or a recorded catalog to read') };
  let unanswered = 'no gateway is asked (listen.http: false, or --data-dir)';
  if (config.http) {
    const url = `http://${config.http.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:')}`;
    const asked = await askGateway(url, call);
    if ('facts' in asked) {
      const missing = `${call.tool} is not in the catalog of the running gateway at ${url}`;
      return { facts: asked.facts, note: factsNote(call, asked.facts !== undefined, { from: 'gateway', url }, missing) };
    }
    unanswered = `no gateway answered at ${url} (${asked.problem})`;
  }
  const file = catalogFile(config.dataDir);
  const recorded = factsFromRecorded(call, readRecordedCatalog(config.dataDir), file);
  if (recorded.note.source.from === 'recorded') recorded.note.source.unanswered = unanswered;
  else if (recorded.note.source.from === 'call') recorded.note.source.why = `${unanswered}, and ${recorded.note.source.why}`;
  return recorded;
}

/** The live facts of the call's tool (or upstream) from a running gateway; `problem` when none answered as one does. */
async function askGateway(url: string, call: StatedCall): Promise<{ facts: ToolFacts | undefined } | { problem: string }> {
  let response: Response;
  try {
    response = await fetch(`${url}/api/policy/explain`, {
      method: 'POST',
      // A gateway with `auth.apiKeys` answers an approver's key only (the local user's loopback access ends there).
      headers: { 'content-type': 'application/json', ...(process.env.GATEHOUSE_API_KEY ? { authorization: `Bearer ${process.env.GATEHOUSE_API_KEY}` } : {}) },
      body: JSON.stringify(targetSpec(call)),
      signal: AbortSignal.timeout(ASK_TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return { problem: cause?.code ?? (err as Error).name };
  }
  const body = (await response.json().catch(() => undefined)) as { input?: Record<string, unknown>; facts?: FactsNote; error?: { code?: string } } | undefined;
  if (!response.ok || !body?.input || !body.facts) return { problem: `HTTP ${response.status}${body?.error?.code ? ` ${body.error.code}` : ''}` };
  if (body.facts.source.from !== 'catalog') return { facts: undefined };
  const { annotations, riskTags, labels, upstreamUrl, definitionChanged } = body.input;
  return {
    facts: {
      annotations: annotations as ToolAnnotations | undefined,
      riskTags: Array.isArray(riskTags) ? riskTags.filter((t): t is string => typeof t === 'string') : [],
      labels: labels && typeof labels === 'object' ? (labels as Record<string, string>) : {},
      ...(typeof upstreamUrl === 'string' ? { upstreamUrl } : {}),
      // A changed definition held for approval (onDefinitionChange: approve): the live gateway's pins say so.
      ...(isDefinitionChange(definitionChanged) ? { definitionChanged } : {}),
    },
  };
}

function isDefinitionChange(value: unknown): value is DefinitionChange {
  const change = value as Partial<DefinitionChange> | undefined;
  return typeof change?.pinned === 'string' && typeof change.current === 'string' && Array.isArray(change.fields) && change.fields.every((f) => typeof f === 'string');
}
