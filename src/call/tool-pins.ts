import type { Clock, PinScan, PinStore, ToolPin } from '../ports.ts';
import type { ToolDefinition } from '../protocol/mcp.ts';
import type { AuditEvent } from '../protocol/audit-record.ts';
import type { DefinitionChange } from '../kernel/decision.ts';
import { digestOf } from '../protocol/digest.ts';
import { namespacedName } from './tool-names.ts';
import { PoisoningCheck } from './poisoning-check.ts';
import { poisoningContext, whyQuarantined, type PoisoningContext } from './poisoning-pins.ts';

/** What a gateway does when an upstream's tool no longer matches its pin (`upstreams.<name>.onDefinitionChange`). */
export type OnDefinitionChange = 'quarantine' | 'approve' | 'allow';

/** A digest a pack's tools.yaml pins for one tool of an upstream it governs, and who pinned it (`pack:<name>@<version>`). */
export interface PackPin {
  digest: string;
  by: string;
}

/** What a listing's review found: the tools to hold back, and those served only with a human's approval (`approve`). */
export interface PinReview {
  quarantined: Set<string>;
  approve: Map<string, DefinitionChange>;
}

/** Where a definition stands against its pin now: the pinned one, a change recorded, or a change an operator rejected. */
export type PinStanding = 'pinned' | 'changed' | 'rejected';

const CHANGED = 'its definition changed since it was pinned';

export type PinAudit = (event: Pick<AuditEvent, 'type' | 'actor' | 'data'>) => void;

/** Which top-level fields of a definition differ (description, inputSchema, annotations …): the audit's compact diff. */
export function changedFields(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => digestOf(before[k]) !== digestOf(after[k])).sort();
}

/** The change of a pin's recorded definition, for the operator (CLI, API, console): a pack's pin is a digest only. */
export function pinDiff(pin: ToolPin): { fields: string[]; pinnedDigestOnly: boolean } {
  const pinnedDigestOnly = pin.pinnedBy.startsWith('pack:') && Object.keys(pin.definition).length === 0;
  return { fields: pin.changed && !pinnedDigestOnly ? changedFields(pin.definition, pin.changed.definition) : [], pinnedDigestOnly };
}

/**
 * Tool definitions held to the first one seen, or to the digest a pack pins (a "rug pull" guard). An upstream's
 * listing is reviewed against its pins before the catalog takes it: a new tool is pinned; one whose definition
 * differs from its pin is quarantined (hidden and refused, audited `tool.quarantined` once per new definition),
 * or with `approve` served under a human's approval of each call (audited `tool.definition_changed`, mode
 * approve), or with `allow` re-pinned (audited `tool.definition_changed`, mode allow). An operator's `accept`
 * pins the new definition; the catalog then releases the tool. A stored pin wins over a pack's digest: the
 * pack's is the pin only of a tool never pinned before.
 */
export class ToolPins {
  constructor(
    private readonly store: PinStore,
    private readonly clock: Clock,
    private readonly audit: PinAudit,
    private readonly modeOf: (server: string) => OnDefinitionChange = () => 'quarantine',
    /** The poisoning scan (poisoning-check.ts); without one, definitions are scanned with `quarantine`. */
    private readonly poisoning: PoisoningCheck = new PoisoningCheck(),
    /** The digest a pack governing this upstream pins for the tool, if one does. */
    private readonly packPinOf: (server: string, tool: string) => PackPin | undefined = () => undefined,
  ) {}

  /** Why each tool held back by the last review was held, by namespaced name: for the refusal's message. */
  private readonly reasons = new Map<string, string>();

  /**
   * Pins what is new, and answers the names (the upstream's own) of the tools held back or put before a human.
   * `known` adds the tools other upstreams listed that are not pinned yet, for the shadowing check (bare name →
   * upstreams).
   */
  async review(server: string, tools: readonly ToolDefinition[], known?: ReadonlyMap<string, readonly string[]>): Promise<PinReview> {
    const all = await this.store.list();
    const pins = new Map(all.filter((p) => p.server === server).map((p) => [p.tool, p]));
    const context = poisoningContext(server, tools, all, known);
    const now = this.clock.now();
    const mode = this.modeOf(server);
    const writes: ToolPin[] = [];
    const review: PinReview = { quarantined: new Set(), approve: new Map() };
    for (const tool of tools) {
      if (!tool || typeof tool.name !== 'string') continue;
      const definition = tool as unknown as Record<string, unknown>;
      const digest = digestOf(tool);
      let pin = pins.get(tool.name);
      const scan = this.scan(server, tool, digest, context);
      if (!pin) {
        const pack = this.packPinOf(server, tool.name);
        if (!pack || pack.digest === digest) {
          writes.push({ server, tool: tool.name, digest, definition, pinnedAt: now, pinnedBy: pack?.by ?? 'first-seen', ...(scan ? { scan } : {}) });
          if (scan && this.suspect(server, tool.name, digest, scan)) review.quarantined.add(tool.name);
          continue;
        }
        // A pack pinned another definition: what the upstream gives is a change from the pack's digest.
        pin = { server, tool: tool.name, digest: pack.digest, definition: {}, pinnedAt: now, pinnedBy: pack.by };
      }
      // The pinned definition is served, even while a change is recorded: replicas sharing pins may run different
      // versions of the upstream, and one still on the pinned version must not erase what another saw.
      if (pin.digest === digest) {
        // Found now but not on record (a pin from before the scan, or from while it was off): recorded, audited once.
        if (scan && !pin.scan) writes.push({ ...pin, scan });
        if (scan && !pin.scan?.accepted && this.suspect(server, tool.name, digest, scan, !pin.scan)) review.quarantined.add(tool.name);
        continue;
      }
      const id = namespacedName(server, tool.name);
      const { fields, pinnedDigestOnly } = pinDiff({ ...pin, changed: { digest, definition, seenAt: now } });
      const diff = { tool: id, previous: pin.digest, current: digest, fields, ...(pinnedDigestOnly ? { pinnedBy: pin.pinnedBy } : {}) };
      if (mode === 'allow') {
        writes.push({ server, tool: tool.name, digest, definition, pinnedAt: now, pinnedBy: 'allow', ...(scan ? { scan } : {}) });
        this.audit({ type: 'tool.definition_changed', actor: server, data: { ...diff, mode } });
        if (scan && this.suspect(server, tool.name, digest, scan)) review.quarantined.add(tool.name);
        continue;
      }
      const seen = pin.changed?.digest === digest;
      const flagged = scan !== undefined && this.poisoning.modeOf(server) === 'quarantine';
      // A change an operator rejected, or one the scan flags, is held back whatever the mode: nobody is asked to
      // approve calls to a definition already refused or suspected of poisoning.
      if (mode === 'approve' && !(seen && pin.changed?.rejected) && !flagged) review.approve.set(tool.name, { pinned: pin.digest, current: digest, fields });
      else {
        review.quarantined.add(tool.name);
        this.reasons.set(id, flagged ? whyQuarantined(scan, true) : CHANGED);
      }
      if (seen) continue;
      writes.push({ ...pin, changed: { digest, definition, seenAt: now, ...(scan ? { scan } : {}) } });
      this.audit(mode === 'approve' ? { type: 'tool.definition_changed', actor: server, data: { ...diff, mode } } : { type: 'tool.quarantined', actor: server, data: diff });
      if (scan) this.suspect(server, tool.name, digest, scan, true, true);
    }
    await this.store.put(writes);
    return review;
  }

  /**
   * Where the definition with this digest stands now (an operator may have accepted or rejected it since): pinned
   * only when it is the pin and not held for the scan's findings.
   */
  async standing(server: string, tool: string, digest: string): Promise<PinStanding> {
    const pin = await this.store.get(server, tool);
    if (pin?.digest === digest) return !pin.scan || pin.scan.accepted !== undefined || this.poisoning.modeOf(server) !== 'quarantine' ? 'pinned' : 'changed';
    return pin?.changed?.digest === digest && pin.changed.rejected ? 'rejected' : 'changed';
  }

  /** Why a tool the last review held back is quarantined, for the model and the log. */
  whyHeld(id: string): string {
    return this.reasons.get(id) ?? CHANGED;
  }

  /** The scan's findings on a definition, as a pin records them; undefined when it found nothing (or is off). */
  private scan(server: string, tool: ToolDefinition, digest: string, context: PoisoningContext): PinScan | undefined {
    const findings = this.poisoning.findings(server, tool, digest, context.siblings, context.others, context.key);
    return findings.length > 0 ? { findings } : undefined;
  }

  /** Audits a flagged definition (once: `audit` is false when it is on record already); whether to hold the tool. */
  private suspect(server: string, tool: string, digest: string, scan: PinScan, audit = true, changed = false): boolean {
    const id = namespacedName(server, tool);
    const mode = this.poisoning.modeOf(server);
    if (audit) this.audit({ type: 'tool.poisoning_suspected', actor: server, data: { tool: id, digest, mode, findings: scan.findings } });
    if (mode !== 'quarantine') return false;
    this.reasons.set(id, whyQuarantined(scan, changed));
    return true;
  }
}

/**
 * An operator's decision on a quarantined tool (`gatehouse tools accept|reject`): the pin as it is to be written. A
 * changed definition is accepted with its findings, if any: the operator vouches for what they were shown.
 */
export function decide(pin: ToolPin, decision: 'accept' | 'reject', by: string, at: number): ToolPin {
  if (!pin.changed) {
    if (!pin.scan) return pin;
    return { ...pin, scan: { ...pin.scan, ...(decision === 'accept' ? { accepted: { by, at } } : { rejected: { by, at } }) } };
  }
  if (decision === 'accept') {
    const scan = pin.changed.scan;
    return { server: pin.server, tool: pin.tool, digest: pin.changed.digest, definition: pin.changed.definition, pinnedAt: at, pinnedBy: by, ...(scan ? { scan: { findings: scan.findings, accepted: { by, at } } } : {}) };
  }
  return { ...pin, changed: { ...pin.changed, rejected: { by, at } } };
}
