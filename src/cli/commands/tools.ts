import { openPinState } from '../../runtime/state.ts';
import type { PinScan, ToolPin } from '../../ports.ts';
import type { DefinitionFinding } from '../../protocol/definition-finding.ts';
import { escapeHidden, jsonWithoutHidden } from '../../call/hidden-unicode.ts';
import { changedFields, decide } from '../../call/tool-pins.ts';
import { namespacedName, SEPARATOR } from '../../call/tool-names.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { localUser, stateConfig, STATE_FLAGS } from '../state.ts';

export const TOOLS_HELP = `Usage:
  gatehouse tools pins [--json]
  gatehouse tools diff NAME [--json]
  gatehouse tools show NAME [--json]
  gatehouse tools accept NAME [--as NAME]
  gatehouse tools reject NAME [--as NAME]

The tool definitions each upstream was pinned to (<dataDir>/pins.json; Redis in distributed mode): the first
definition seen of each tool.
A tool whose definition changed since is quarantined: not listed, and its calls refused with
GH_ERR_TOOL_QUARANTINED, until it is accepted. So is a tool whose definition the poisoning scan flagged
(upstreams.<name>.definitionScan: quarantine, the default). NAME is <upstream>__<tool>.
  pins     every pinned tool: its state (pinned | quarantined | suspect | rejected), digests and scan findings
  diff     the pinned definition against the one the upstream gives now, and the findings on either
  show     the pinned definition (and a changed one), with the findings
  accept   pins the new definition, or vouches for a flagged one; running gateways list the tool again at their next
           listing (audited tool.accepted)
  reject   keeps the tool quarantined and records the decision (audited tool.rejected)
Works on the state of running gateways (another process is fine).
  --config FILE     the gateway's config (default ./gatehouse.yaml when present); distributed mode reads Redis
  --data-dir DIR    the data dir directly (default for wrap: ~/.gatehouse)
  --as NAME         who decides, recorded in the audit trail (default: your user name)`;

export async function runTools(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'as'], booleans: ['json'] });
  const [action, name] = args.positionals;
  if (!action) throw usage('missing an action: pins, diff, accept or reject');
  if (!['pins', 'diff', 'show', 'accept', 'reject'].includes(action)) throw usage(`unknown action "${action}"`);
  if (action !== 'pins' && !name?.includes(SEPARATOR)) throw usage('missing the tool, as <upstream>__<tool>');
  const { pins, audit, close } = await openPinState(stateConfig(args));
  try {
    const all = await pins.list();
    if (action === 'pins') {
      if (args.flags.json) console.log(jsonWithoutHidden(all.map(summary), 2));
      else if (all.length === 0) console.log('no tool is pinned yet');
      else for (const p of all) console.log(line(p));
      return 0;
    }
    const pin = all.find((p) => namespacedName(p.server, p.tool) === name);
    if (!pin) {
      console.error(`gatehouse tools: no pinned tool ${name}`);
      return 1;
    }
    if (action === 'show') {
      if (args.flags.json) console.log(jsonWithoutHidden({ ...summary(pin), definition: pin.definition, ...(pin.changed ? { current: pin.changed.definition } : {}) }, 2));
      else console.log([`${name}: ${stateOf(pin)} ${pin.digest}`, jsonWithoutHidden(pin.definition, 2), ...findingLines('findings', pin.scan), ...(pin.changed ? [`changed to ${pin.changed.digest}:`, jsonWithoutHidden(pin.changed.definition, 2), ...findingLines('findings', pin.changed.scan)] : [])].join('\n'));
      return 0;
    }
    if (action === 'diff') {
      if (!pin.changed) {
        console.log(args.flags.json ? jsonWithoutHidden({ tool: name, state: stateOf(pin), fields: [], ...(pin.scan ? { findings: pin.scan.findings } : {}) }) : [`${name} is ${stateOf(pin)}; its definition has not changed (${pin.digest})`, ...findingLines('findings', pin.scan)].join('\n'));
        return 0;
      }
      const fields = changedFields(pin.definition, pin.changed.definition);
      if (args.flags.json) console.log(jsonWithoutHidden({ tool: name, ...summary(pin), fields, pinned: pin.definition, current: pin.changed.definition }, 2));
      else console.log(diffText(name!, pin, fields));
      return 0;
    }
    const flagged = pin.scan && !pin.scan.accepted ? pin.scan : undefined;
    if (!pin.changed && !flagged) {
      console.error(`gatehouse tools: ${name} is not quarantined; there is nothing to ${action}`);
      return 1;
    }
    const actor = flag(args, 'as') ?? localUser();
    const at = Date.now();
    await pins.put([decide(pin, action as 'accept' | 'reject', actor, at)]);
    const findings = (pin.changed ? pin.changed.scan : flagged)?.findings;
    const data = pin.changed
      ? { tool: name, previous: pin.digest, current: pin.changed.digest, fields: changedFields(pin.definition, pin.changed.definition), ...(findings ? { findings: kindsOf(findings) } : {}) }
      : { tool: name, current: pin.digest, findings: kindsOf(findings!) };
    audit.record({ tenant: 'default', at, type: action === 'accept' ? 'tool.accepted' : 'tool.rejected', actor, data });
    await audit.flush();
    const digest = pin.changed?.digest ?? pin.digest;
    console.log(action === 'accept' ? `${name} is pinned to ${pin.changed ? 'its new definition' : 'its definition, despite the findings'} (${digest}); running gateways list it again` : `${name} stays quarantined (rejected by ${actor})`);
    return 0;
  } finally {
    await close();
  }
}

/** `suspect`: the scan flagged the pinned definition (quarantined unless the upstream's definitionScan is log or off). */
function stateOf(p: ToolPin): string {
  if (p.changed) return p.changed.rejected ? 'rejected' : 'quarantined';
  if (p.scan && !p.scan.accepted) return p.scan.rejected ? 'rejected' : 'suspect';
  return 'pinned';
}

function summary(p: ToolPin): Record<string, unknown> {
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

function line(p: ToolPin): string {
  const findings = [...(p.scan && !p.scan.accepted ? p.scan.findings : []), ...(p.changed?.scan?.findings ?? [])];
  return `${namespacedName(p.server, p.tool)}  ${stateOf(p).padEnd(11)} ${p.digest}${p.changed ? ` -> ${p.changed.digest}` : ''}${findings.length ? `  ${kindsOf(findings).join(', ')}` : ''}`;
}

/** Each kind with the fields it was found in: `model-instructions (description, inputSchema.properties.a.default)`. */
function kindsOf(findings: readonly DefinitionFinding[]): string[] {
  const fields = new Map<string, Set<string>>();
  for (const f of findings) fields.set(f.kind, (fields.get(f.kind) ?? new Set()).add(f.field));
  return [...fields].map(([kind, at]) => `${kind} (${[...at].join(', ')})`);
}

/** The findings one per line, their excerpts escaped by the scan (no hidden character reaches the terminal). */
function findingLines(title: string, scan: PinScan | undefined): string[] {
  if (!scan) return [];
  return [`${title}${scan.accepted ? ` (accepted by ${scan.accepted.by})` : ''}:`, ...scan.findings.map((f) => `  ${f.kind}/${f.rule} in ${f.field}: ${f.excerpt}${f.decoded ? ` (spells "${f.decoded}")` : ''}`)];
}

/** Field by field: the pinned value, then the current one, as JSON (a schema reads better whole than as a line diff). */
function diffText(name: string, pin: ToolPin, fields: string[]): string {
  const out = [`${name}: ${stateOf(pin)}`, `pinned   ${pin.digest}`, `current  ${pin.changed!.digest}`];
  for (const field of fields) {
    out.push(`${field}:`, `  - ${escapeHidden(JSON.stringify(pin.definition[field]) ?? '(absent)')}`, `  + ${escapeHidden(JSON.stringify(pin.changed!.definition[field]) ?? '(absent)')}`);
  }
  out.push(...findingLines('findings on the pinned definition', pin.scan), ...findingLines('findings on the current definition', pin.changed!.scan));
  return out.join('\n');
}

