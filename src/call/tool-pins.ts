import type { Clock, PinStore, ToolPin } from '../ports.ts';
import type { ToolDefinition } from '../protocol/mcp.ts';
import type { AuditEvent } from '../protocol/audit-record.ts';
import { digestOf } from '../protocol/digest.ts';
import { namespacedName } from './tool-names.ts';

/** What a gateway does when an upstream's tool no longer matches its pin (`upstreams.<name>.onDefinitionChange`). */
export type OnDefinitionChange = 'quarantine' | 'allow';

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
  ) {}

  /** Pins what is new, and answers the names (the upstream's own) of the tools that are quarantined. */
  async review(server: string, tools: readonly ToolDefinition[]): Promise<Set<string>> {
    const pins = new Map((await this.store.list()).filter((p) => p.server === server).map((p) => [p.tool, p]));
    const now = this.clock.now();
    const writes: ToolPin[] = [];
    const held = new Set<string>();
    for (const tool of tools) {
      if (!tool || typeof tool.name !== 'string') continue;
      const definition = tool as unknown as Record<string, unknown>;
      const digest = digestOf(tool);
      const pin = pins.get(tool.name);
      if (!pin) {
        writes.push({ server, tool: tool.name, digest, definition, pinnedAt: now, pinnedBy: 'first-seen' });
        continue;
      }
      // The pinned definition is served, even while a change is recorded: replicas sharing pins may run different
      // versions of the upstream, and one still on the pinned version must not erase what another saw.
      if (pin.digest === digest) continue;
      const id = namespacedName(server, tool.name);
      const diff = { tool: id, previous: pin.digest, current: digest, fields: changedFields(pin.definition, definition) };
      if (this.modeOf(server) === 'allow') {
        writes.push({ server, tool: tool.name, digest, definition, pinnedAt: now, pinnedBy: 'allow' });
        this.audit({ type: 'tool.definition_changed', actor: server, data: diff });
        continue;
      }
      held.add(tool.name);
      if (pin.changed?.digest === digest) continue;
      writes.push({ ...pin, changed: { digest, definition, seenAt: now } });
      this.audit({ type: 'tool.quarantined', actor: server, data: diff });
    }
    await this.store.put(writes);
    return held;
  }

  /** Whether the definition with this digest is the pinned one now (an operator accepted it since). */
  async isPinned(server: string, tool: string, digest: string): Promise<boolean> {
    return (await this.store.get(server, tool))?.digest === digest;
  }
}

/** An operator's decision on a quarantined tool (`gatehouse tools accept|reject`): the pin as it is to be written. */
export function decide(pin: ToolPin, decision: 'accept' | 'reject', by: string, at: number): ToolPin {
  if (!pin.changed) return pin;
  if (decision === 'accept') return { server: pin.server, tool: pin.tool, digest: pin.changed.digest, definition: pin.changed.definition, pinnedAt: at, pinnedBy: by };
  return { ...pin, changed: { ...pin.changed, rejected: { by, at } } };
}
