import { openPinState } from '../../runtime/state.ts';
import type { ToolPin } from '../../ports.ts';
import { changedFields, decide } from '../../call/tool-pins.ts';
import { namespacedName, SEPARATOR } from '../../call/tool-names.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { localUser, stateConfig, STATE_FLAGS } from '../state.ts';

export const TOOLS_HELP = `Usage:
  gatehouse tools pins [--json]
  gatehouse tools diff NAME [--json]
  gatehouse tools accept NAME [--as NAME]
  gatehouse tools reject NAME [--as NAME]

The tool definitions each upstream was pinned to (<dataDir>/pins.json; Redis in distributed mode): the first
definition seen of each tool.
A tool whose definition changed since is quarantined: not listed, and its calls refused with
GH_ERR_TOOL_QUARANTINED, until it is accepted. NAME is <upstream>__<tool>.
  pins     every pinned tool: its state (pinned | quarantined | rejected) and digests
  diff     the pinned definition against the one the upstream gives now
  accept   pins the new definition; running gateways list the tool again at their next listing (audited tool.accepted)
  reject   keeps the tool quarantined and records the decision (audited tool.rejected)
Works on the state of running gateways (another process is fine).
  --config FILE     the gateway's config (default ./gatehouse.yaml when present); distributed mode reads Redis
  --data-dir DIR    the data dir directly (default for wrap: ~/.gatehouse)
  --as NAME         who decides, recorded in the audit trail (default: your user name)`;

export async function runTools(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'as'], booleans: ['json'] });
  const [action, name] = args.positionals;
  if (!action) throw usage('missing an action: pins, diff, accept or reject');
  if (!['pins', 'diff', 'accept', 'reject'].includes(action)) throw usage(`unknown action "${action}"`);
  if (action !== 'pins' && !name?.includes(SEPARATOR)) throw usage('missing the tool, as <upstream>__<tool>');
  const { pins, audit, close } = await openPinState(stateConfig(args));
  try {
    const all = await pins.list();
    if (action === 'pins') {
      if (args.flags.json) console.log(JSON.stringify(all.map(summary), null, 2));
      else if (all.length === 0) console.log('no tool is pinned yet');
      else for (const p of all) console.log(line(p));
      return 0;
    }
    const pin = all.find((p) => namespacedName(p.server, p.tool) === name);
    if (!pin) {
      console.error(`gatehouse tools: no pinned tool ${name}`);
      return 1;
    }
    if (action === 'diff') {
      if (!pin.changed) {
        console.log(args.flags.json ? JSON.stringify({ tool: name, state: 'pinned', fields: [] }) : `${name} is pinned; its definition has not changed (${pin.digest})`);
        return 0;
      }
      const fields = changedFields(pin.definition, pin.changed.definition);
      if (args.flags.json) console.log(JSON.stringify({ tool: name, ...summary(pin), fields, pinned: pin.definition, current: pin.changed.definition }, null, 2));
      else console.log(diffText(name!, pin, fields));
      return 0;
    }
    if (!pin.changed) {
      console.error(`gatehouse tools: ${name} is not quarantined; there is nothing to ${action}`);
      return 1;
    }
    const actor = flag(args, 'as') ?? localUser();
    const at = Date.now();
    await pins.put([decide(pin, action as 'accept' | 'reject', actor, at)]);
    const data = { tool: name, previous: pin.digest, current: pin.changed.digest, fields: changedFields(pin.definition, pin.changed.definition) };
    audit.record({ tenant: 'default', at, type: action === 'accept' ? 'tool.accepted' : 'tool.rejected', actor, data });
    await audit.flush();
    console.log(action === 'accept' ? `${name} is pinned to its new definition (${pin.changed.digest}); running gateways list it again` : `${name} stays quarantined (rejected by ${actor})`);
    return 0;
  } finally {
    await close();
  }
}

const stateOf = (p: ToolPin): string => (!p.changed ? 'pinned' : p.changed.rejected ? 'rejected' : 'quarantined');

function summary(p: ToolPin): Record<string, unknown> {
  return { tool: namespacedName(p.server, p.tool), server: p.server, state: stateOf(p), digest: p.digest, pinnedAt: new Date(p.pinnedAt).toISOString(), pinnedBy: p.pinnedBy, ...(p.changed ? { changedDigest: p.changed.digest, changedAt: new Date(p.changed.seenAt).toISOString() } : {}) };
}

function line(p: ToolPin): string {
  return `${namespacedName(p.server, p.tool)}  ${stateOf(p).padEnd(11)} ${p.digest}${p.changed ? ` -> ${p.changed.digest}` : ''}`;
}

/** Field by field: the pinned value, then the current one, as JSON (a schema reads better whole than as a line diff). */
function diffText(name: string, pin: ToolPin, fields: string[]): string {
  const out = [`${name}: ${stateOf(pin)}`, `pinned   ${pin.digest}`, `current  ${pin.changed!.digest}`];
  for (const field of fields) {
    out.push(`${field}:`, `  - ${JSON.stringify(pin.definition[field]) ?? '(absent)'}`, `  + ${JSON.stringify(pin.changed!.definition[field]) ?? '(absent)'}`);
  }
  return out.join('\n');
}

