import type { Clock, PinScan, PinStore, ToolPin } from '../ports.ts';
import type { ToolDefinition } from '../protocol/mcp.ts';
import type { AuditEvent } from '../protocol/audit-record.ts';
import { digestOf } from '../protocol/digest.ts';
import { namespacedName } from './tool-names.ts';
import { PoisoningCheck } from './poisoning-check.ts';
import { poisoningContext, whyQuarantined, type PoisoningContext } from './poisoning-pins.ts';

/** What a gateway does when an upstream's tool no longer matches its pin (`upstreams.<name>.onDefinitionChange`). */
export type OnDefinitionChange = 'quarantine' | 'allow';

const CHANGED = 'its definition changed since it was pinned';

export type PinAudit = (event: Pick<AuditEvent, 'type' | 'actor' | 'data'>) => void;

/** Which top-level fields of a definition differ (description, inputSchema, annotations …): the audit's compact diff. */
export function changedFields(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => digestOf(before[k]) !== digestOf(after[k])).sort();
}

/**
 * Tool definitions held to the first one seen (a "rug pull" guard). An upstream's listing is reviewed against its
 * pins before the catalog takes it: a new tool is pinned; one whose definition differs from its pin is quarantined
 * (hidden and refused, audited `tool.quarantined` once per new definition) or, with `allow`, re-pinned and audited
 * `tool.definition_changed`. An operator's `accept` pins the new definition; the catalog then releases the tool.
 */
export class ToolPins {
  constructor(
    private readonly store: PinStore,
    private readonly clock: Clock,
    private readonly audit: PinAudit,
    private readonly modeOf: (server: string) => OnDefinitionChange = () => 'quarantine',
    /** The poisoning scan (poisoning-check.ts); without one, definitions are scanned with `quarantine`. */
    private readonly poisoning: PoisoningCheck = new PoisoningCheck(),
  ) {}

  /** Why each tool held back by the last review was held, by namespaced name: for the refusal's message. */
  private readonly reasons = new Map<string, string>();

  /**
   * Pins what is new, and answers the names (the upstream's own) of the tools that are quarantined. `known` adds the
   * tools other upstreams listed that are not pinned yet, for the shadowing check (bare name → upstreams).
   */
  async review(server: string, tools: readonly ToolDefinition[], known?: ReadonlyMap<string, readonly string[]>): Promise<Set<string>> {
    const all = await this.store.list();
    const pins = new Map(all.filter((p) => p.server === server).map((p) => [p.tool, p]));
    const context = poisoningContext(server, tools, all, known);
    const now = this.clock.now();
    const writes: ToolPin[] = [];
    const held = new Set<string>();
    for (const tool of tools) {
      if (!tool || typeof tool.name !== 'string') continue;
      const definition = tool as unknown as Record<string, unknown>;
      const digest = digestOf(tool);
      const pin = pins.get(tool.name);
      const scan = this.scan(server, tool, digest, context);
      if (!pin) {
        writes.push({ server, tool: tool.name, digest, definition, pinnedAt: now, pinnedBy: 'first-seen', ...(scan ? { scan } : {}) });
        if (scan && this.suspect(server, tool.name, digest, scan)) held.add(tool.name);
        continue;
      }
      // The pinned definition is served, even while a change is recorded: replicas sharing pins may run different
      // versions of the upstream, and one still on the pinned version must not erase what another saw.
      if (pin.digest === digest) {
        // Found now but not on record (a pin from before the scan, or from while it was off): recorded, audited once.
        if (scan && !pin.scan) writes.push({ ...pin, scan });
        if (scan && !pin.scan?.accepted && this.suspect(server, tool.name, digest, scan, !pin.scan)) held.add(tool.name);
        continue;
      }
      const id = namespacedName(server, tool.name);
      const diff = { tool: id, previous: pin.digest, current: digest, fields: changedFields(pin.definition, definition) };
      if (this.modeOf(server) === 'allow') {
        writes.push({ server, tool: tool.name, digest, definition, pinnedAt: now, pinnedBy: 'allow', ...(scan ? { scan } : {}) });
        this.audit({ type: 'tool.definition_changed', actor: server, data: diff });
        if (scan && this.suspect(server, tool.name, digest, scan)) held.add(tool.name);
        continue;
      }
      held.add(tool.name);
      this.reasons.set(id, scan && this.poisoning.modeOf(server) === 'quarantine' ? whyQuarantined(scan, true) : CHANGED);
      if (pin.changed?.digest === digest) continue;
      writes.push({ ...pin, changed: { digest, definition, seenAt: now, ...(scan ? { scan } : {}) } });
      this.audit({ type: 'tool.quarantined', actor: server, data: diff });
      if (scan) this.suspect(server, tool.name, digest, scan, true, true);
    }
    await this.store.put(writes);
    return held;
  }

  /** Whether the definition with this digest is the pinned one now, and not held for findings (accepted since). */
  async isPinned(server: string, tool: string, digest: string): Promise<boolean> {
    const pin = await this.store.get(server, tool);
    return pin?.digest === digest && (!pin.scan || pin.scan.accepted !== undefined || this.poisoning.modeOf(server) !== 'quarantine');
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
