import { openPinState } from '../../runtime/state.ts';
import { PinDesk, type PinChange, type PinSummary } from '../../call/pin-desk.ts';
import { SEPARATOR } from '../../call/tool-names.ts';
import { asGatewayError } from '../../errors.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { localUser, stateConfig, STATE_FLAGS } from '../state.ts';

export const TOOLS_HELP = `Usage:
  gatehouse tools pins [--json]
  gatehouse tools diff NAME [--json]
  gatehouse tools accept NAME [--as NAME] [--digest DIGEST]
  gatehouse tools reject NAME [--as NAME] [--digest DIGEST]

The tool definitions each upstream was pinned to (<dataDir>/pins.json; Redis in distributed mode): the first
definition seen of each tool, or the digest a pack's tools.yaml pins.
A tool whose definition changed since is quarantined: not listed, and its calls refused with
GH_ERR_TOOL_QUARANTINED (with onDefinitionChange: approve, listed, and each call needs an approval), until it
is accepted. NAME is <upstream>__<tool>.
  pins     every pinned tool: its state (pinned | quarantined | rejected) and digests
  diff     the pinned definition against the one the upstream gives now
  accept   pins the new definition; running gateways list the tool again at their next listing (audited tool.accepted)
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
  if (!['pins', 'diff', 'accept', 'reject'].includes(action)) throw usage(`unknown action "${action}"`);
  if (action !== 'pins' && !name?.includes(SEPARATOR)) throw usage('missing the tool, as <upstream>__<tool>');
  const { pins, audit, close } = await openPinState(stateConfig(args));
  const desk = new PinDesk(pins, (event) => audit.record({ tenant: 'default', at: Date.now(), ...event }), Date.now);
  try {
    if (action === 'pins') {
      const all = await desk.list();
      if (args.flags.json) console.log(JSON.stringify(all, null, 2));
      else if (all.length === 0) console.log('no tool is pinned yet');
      else for (const p of all) console.log(line(p));
      return 0;
    }
    if (action === 'diff') {
      const change = await desk.change(name!);
      if (!change.current) {
        console.log(args.flags.json ? JSON.stringify({ tool: name, state: 'pinned', fields: [] }) : `${name} is pinned; its definition has not changed (${change.digest})`);
        return 0;
      }
      console.log(args.flags.json ? JSON.stringify(change, null, 2) : diffText(change));
      return 0;
    }
    const actor = flag(args, 'as') ?? localUser();
    const decided = await desk.decide(name!, action as 'accept' | 'reject', actor, flag(args, 'digest'));
    await audit.flush();
    console.log(action === 'accept' ? `${name} is pinned to its new definition (${decided.digest}); running gateways list it again` : `${name} stays quarantined (rejected by ${actor})`);
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

function line(p: PinSummary): string {
  return `${p.tool}  ${p.state.padEnd(11)} ${p.digest}${p.changedDigest ? ` -> ${p.changedDigest}` : ''}`;
}

/** Field by field: the pinned value, then the current one, as JSON (a schema reads better whole than as a line diff). */
function diffText(change: PinChange): string {
  const out = [`${change.tool}: ${change.state}`, `pinned   ${change.digest} (by ${change.pinnedBy})`, `current  ${change.changedDigest}`];
  if (change.pinnedDigestOnly) out.push(`${change.pinnedBy} pinned only a digest: there is no definition to compare with; the current one is:`, JSON.stringify(change.current, null, 2));
  for (const field of change.fields) {
    out.push(`${field}:`, `  - ${JSON.stringify(change.pinned[field]) ?? '(absent)'}`, `  + ${JSON.stringify(change.current?.[field]) ?? '(absent)'}`);
  }
  return out.join('\n');
}
