import type { PinStore, ToolPin } from '../ports.ts';
import type { DefinitionFinding } from '../protocol/definition-finding.ts';
import { GatewayError } from '../errors.ts';
import { decide, pinDiff, type PinAudit } from './tool-pins.ts';
import { namespacedName } from './tool-names.ts';

/** One pinned tool as an operator sees it (`gatehouse tools pins --json`, `GET /api/tools/pins`). */
export interface PinSummary {
  tool: string;
  server: string;
  /** `suspect`: the poisoning scan flagged the pinned definition (held unless its upstream's definitionScan is log or off). */
  state: 'pinned' | 'quarantined' | 'suspect' | 'rejected';
  digest: string;
  pinnedAt: string;
  pinnedBy: string;
  findings?: DefinitionFinding[];
  findingsAcceptedBy?: string;
  changedDigest?: string;
  changedAt?: string;
  changedFindings?: DefinitionFinding[];
}

/** A pin's change, field by field (`gatehouse tools diff --json`, `GET /api/tools/pins/:tool`). */
export interface PinChange extends PinSummary {
  fields: string[];
  /** The pin is a pack's digest, with no definition to compare with: the whole current definition is the change. */
  pinnedDigestOnly?: true;
  pinned: Record<string, unknown>;
  current?: Record<string, unknown>;
}

export function stateOf(p: ToolPin): PinSummary['state'] {
  if (p.changed) return p.changed.rejected ? 'rejected' : 'quarantined';
  if (p.scan && !p.scan.accepted) return p.scan.rejected ? 'rejected' : 'suspect';
  return 'pinned';
}

export function summaryOf(p: ToolPin): PinSummary {
  return {
    tool: namespacedName(p.server, p.tool),
    server: p.server,
    state: stateOf(p),
    digest: p.digest,
    pinnedAt: new Date(p.pinnedAt).toISOString(),
    pinnedBy: p.pinnedBy,
    ...(p.scan ? { findings: p.scan.findings, ...(p.scan.accepted ? { findingsAcceptedBy: p.scan.accepted.by } : {}) } : {}),
    ...(p.changed ? { changedDigest: p.changed.digest, changedAt: new Date(p.changed.seenAt).toISOString(), ...(p.changed.scan ? { changedFindings: p.changed.scan.findings } : {}) } : {}),
  };
}

/** Each kind with the fields it was found in: `model-instructions (description, inputSchema.properties.a.default)`. */
export function kindsOf(findings: readonly DefinitionFinding[]): string[] {
  const fields = new Map<string, Set<string>>();
  for (const f of findings) fields.set(f.kind, (fields.get(f.kind) ?? new Set()).add(f.field));
  return [...fields].map(([kind, at]) => `${kind} (${[...at].join(', ')})`);
}

/** What the API and the console use of a gateway's pins: the desk, whose decisions the gateway also applies at once. */
export type PinDecisions = Pick<PinDesk, 'list' | 'change' | 'decide'>;

/**
 * What an operator does with the pins, the same from the CLI and the API: list them, see one change, and accept
 * (pin the new definition) or reject it (keep it held back), audited `tool.accepted` / `tool.rejected` with who.
 */
export class PinDesk {
  constructor(
    private readonly store: PinStore,
    private readonly audit: PinAudit,
    private readonly now: () => number,
  ) {}

  async list(): Promise<PinSummary[]> {
    return (await this.store.list()).map(summaryOf);
  }

  /** One tool's pin (`<upstream>__<tool>`); GH_ERR_PIN_NOT_FOUND when no tool of that name is pinned. */
  async pin(name: string): Promise<ToolPin> {
    const pin = (await this.store.list()).find((p) => namespacedName(p.server, p.tool) === name);
    if (!pin) throw new GatewayError('GH_ERR_PIN_NOT_FOUND', `no pinned tool ${name}`);
    return pin;
  }

  async change(name: string): Promise<PinChange> {
    const pin = await this.pin(name);
    const { fields, pinnedDigestOnly } = pinDiff(pin);
    return { ...summaryOf(pin), fields, ...(pinnedDigestOnly ? { pinnedDigestOnly: true as const } : {}), pinned: pin.definition, ...(pin.changed ? { current: pin.changed.definition } : {}) };
  }

  /**
   * Accepts or rejects the recorded change of a tool; GH_ERR_PIN_NOT_CHANGED when there is none to decide on. With
   * `seen`, the digest of the change the operator reviewed: GH_ERR_PIN_STALE when the recorded change is another
   * one by now (replicas on different versions of an upstream each record what they see), so nobody accepts a
   * definition they did not read.
   */
  async decide(name: string, decision: 'accept' | 'reject', by: string, seen?: string): Promise<ToolPin> {
    const pin = await this.pin(name);
    // A definition the poisoning scan flagged is decided on as a change is: the operator vouches for it, or not.
    const flagged = pin.scan && !pin.scan.accepted ? pin.scan : undefined;
    if (!pin.changed && !flagged) throw new GatewayError('GH_ERR_PIN_NOT_CHANGED', `${name} is not quarantined; there is nothing to ${decision}`);
    const current = pin.changed?.digest ?? pin.digest;
    if (seen !== undefined && seen !== current) {
      throw new GatewayError('GH_ERR_PIN_STALE', `the change of ${name} recorded now is ${current}, not ${seen}, the one reviewed: review it again`);
    }
    const at = this.now();
    const decided = decide(pin, decision, by, at);
    await this.store.put([decided]);
    const findings = (pin.changed ? pin.changed.scan : flagged)?.findings;
    const data = pin.changed
      ? { tool: name, previous: pin.digest, current, fields: pinDiff(pin).fields, ...(findings ? { findings: kindsOf(findings) } : {}) }
      : { tool: name, current, findings: kindsOf(findings!) };
    this.audit({ type: decision === 'accept' ? 'tool.accepted' : 'tool.rejected', actor: by, data });
    return decided;
  }
}
