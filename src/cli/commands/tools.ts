import { openPinState } from '../../runtime/state.ts';
import type { PinScan, ToolPin } from '../../ports.ts';
import { escapeHidden, jsonWithoutHidden } from '../../call/hidden-unicode.ts';
import { pinDiff } from '../../call/tool-pins.ts';
import { kindsOf, PinDesk, stateOf, summaryOf } from '../../call/pin-desk.ts';
import { SEPARATOR } from '../../call/tool-names.ts';
import { asGatewayError } from '../../errors.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { localUser, stateConfig, STATE_FLAGS } from '../state.ts';

export const TOOLS_HELP = `Usage:
  gatehouse tools pins [--json]
  gatehouse tools diff NAME [--json]
  gatehouse tools show NAME [--json]
  gatehouse tools accept NAME [--as NAME] [--digest DIGEST]
  gatehouse tools reject NAME [--as NAME] [--digest DIGEST]

The tool definitions each upstream was pinned to (<dataDir>/pins.json; Redis in distributed mode): the first
definition seen of each tool, or the digest a pack's tools.yaml pins.
A tool whose definition changed since is quarantined: not listed, and its calls refused with
GH_ERR_TOOL_QUARANTINED (with onDefinitionChange: approve, listed, and each call needs an approval), until it
is accepted. So is a tool whose definition the poisoning scan flagged
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
  --as NAME         who decides, recorded in the audit trail (default: your user name)
  --digest DIGEST   the changed digest you reviewed (from diff): refused if another change is recorded by now`;

export async function runTools(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'as', 'digest'], booleans: ['json'] });
  const [action, name] = args.positionals;
  if (!action) throw usage('missing an action: pins, diff, accept or reject');
  if (!['pins', 'diff', 'show', 'accept', 'reject'].includes(action)) throw usage(`unknown action "${action}"`);
  if (action !== 'pins' && !name?.includes(SEPARATOR)) throw usage('missing the tool, as <upstream>__<tool>');
  const { pins, audit, close } = await openPinState(stateConfig(args));
  const desk = new PinDesk(pins, (event) => audit.record({ tenant: 'default', at: Date.now(), ...event }), Date.now);
  try {
    if (action === 'pins') {
      const all = await pins.list();
      if (args.flags.json) console.log(jsonWithoutHidden(all.map(summaryOf), 2));
      else if (all.length === 0) console.log('no tool is pinned yet');
      else for (const p of all) console.log(line(p));
      return 0;
    }
    const pin = await desk.pin(name!);
    if (action === 'show') {
      if (args.flags.json) console.log(jsonWithoutHidden({ ...summaryOf(pin), definition: pin.definition, ...(pin.changed ? { current: pin.changed.definition } : {}) }, 2));
      else console.log([`${name}: ${stateOf(pin)} ${pin.digest}`, jsonWithoutHidden(pin.definition, 2), ...findingLines('findings', pin.scan), ...(pin.changed ? [`changed to ${pin.changed.digest}:`, jsonWithoutHidden(pin.changed.definition, 2), ...findingLines('findings', pin.changed.scan)] : [])].join('\n'));
      return 0;
    }
    if (action === 'diff') {
      // JSON: the desk's change, as the API gives it, changed or not (then `fields` is empty and there is no `current`).
      if (args.flags.json) console.log(jsonWithoutHidden(await desk.change(name!), 2));
      else if (!pin.changed) console.log([`${name} is ${stateOf(pin)}; its definition has not changed (${pin.digest})`, ...findingLines('findings', pin.scan)].join('\n'));
      else console.log(diffText(name!, pin));
      return 0;
    }
    const actor = flag(args, 'as') ?? localUser();
    await desk.decide(name!, action as 'accept' | 'reject', actor, flag(args, 'digest'));
    await audit.flush();
    const digest = pin.changed?.digest ?? pin.digest;
    console.log(action === 'accept' ? `${name} is pinned to ${pin.changed ? 'its new definition' : 'its definition, despite the findings'} (${digest}); running gateways list it again` : `${name} stays quarantined (rejected by ${actor})`);
    return 0;
  } catch (err) {
    const error = asGatewayError(err);
    if (!['GH_ERR_PIN_NOT_FOUND', 'GH_ERR_PIN_NOT_CHANGED', 'GH_ERR_PIN_STALE'].includes(error.code)) throw err;
    console.error(`gatehouse tools: ${error.message}`);
    return 1;
  } finally {
    await close();
  }
}

function line(p: ToolPin): string {
  const findings = [...(p.scan && !p.scan.accepted ? p.scan.findings : []), ...(p.changed?.scan?.findings ?? [])];
  return `${summaryOf(p).tool}  ${stateOf(p).padEnd(11)} ${p.digest}${p.changed ? ` -> ${p.changed.digest}` : ''}${findings.length ? `  ${kindsOf(findings).join(', ')}` : ''}`;
}

/** The findings one per line, their excerpts escaped by the scan (no hidden character reaches the terminal). */
function findingLines(title: string, scan: PinScan | undefined): string[] {
  if (!scan) return [];
  return [`${title}${scan.accepted ? ` (accepted by ${scan.accepted.by})` : ''}:`, ...scan.findings.map((f) => `  ${f.kind}/${f.rule} in ${f.field}: ${f.excerpt}${f.decoded ? ` (spells "${f.decoded}")` : ''}`)];
}

/** Field by field: the pinned value, then the current one, as JSON (a schema reads better whole than as a line diff). */
function diffText(name: string, pin: ToolPin): string {
  const { fields, pinnedDigestOnly } = pinDiff(pin);
  const out = [`${name}: ${stateOf(pin)}`, `pinned   ${pin.digest} (by ${pin.pinnedBy})`, `current  ${pin.changed!.digest}`];
  if (pinnedDigestOnly) out.push(`${pin.pinnedBy} pinned only a digest: there is no definition to compare with; the current one is:`, jsonWithoutHidden(pin.changed!.definition, 2));
  for (const field of fields) {
    out.push(`${field}:`, `  - ${escapeHidden(JSON.stringify(pin.definition[field]) ?? '(absent)')}`, `  + ${escapeHidden(JSON.stringify(pin.changed!.definition[field]) ?? '(absent)')}`);
  }
  out.push(...findingLines('findings on the pinned definition', pin.scan), ...findingLines('findings on the current definition', pin.changed!.scan));
  return out.join('\n');
}

