import { replayOutcome as outcome, type ReplayGroup, type ReplayReport } from '../../kernel/authoring/replay.ts';
import { html, type SafeHtml } from '../html.ts';

/** A draft replay's report as the Policy page lists it: the counts, then each group of changed decisions. */
export function replayView(report: ReplayReport): SafeHtml {
  return html`<div id="replay-report"><h3>Under draft <span class="mono">${report.policySnapshot.slice(0, 19)}</span></h3>
<dl><dt>Recorded decisions</dt><dd>${report.decisions}</dd><dt>Replayed</dt><dd>${report.replayed}</dd>
<dt>Would change effect</dt><dd id="changed"><strong>${report.changed}</strong></dd>
<dt>Same effect, other rules</dt><dd>${report.sameEffectDifferentRules}</dd><dt>Unchanged</dt><dd>${report.unchanged}</dd>
<dt>Not replayable</dt><dd>${report.skipped}</dd></dl>
${report.groups.length > 0 ? groupsTable('Would change', report.groups, 'changes') : html`<p class="muted">No recorded decision would change its effect.</p>`}
${report.ruleGroups.length > 0 && groupsTable('Same effect, decided by other rules', report.ruleGroups, 'rule-changes')}
${report.redacted > 0 && html`<p class="note">${report.redacted} replayed decisions have redacted arguments: a condition that reads a redacted field saw the marker, so those results may differ live.</p>`}</div>`;
}

function groupsTable(title: string, groups: readonly ReplayGroup[], id: string): SafeHtml {
  return html`<h4>${title}</h4><div class="scroll"><table id="${id}"><thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col">Calls</th><th scope="col">By draft rules</th><th scope="col">Examples</th></tr></thead><tbody>
${groups.map(
  (g) => html`<tr><td><span class="state ${g.from}">${outcome(g.from, g.fromCode)}</span></td><td><span class="state ${g.to}">${outcome(g.to, g.toCode)}</span></td><td>${g.count}</td>
<td class="mono">${g.ruleIds.join(', ') || '(the default)'}</td><td class="mono">${g.examples.map((e) => html`<div>${e.tool} · ${new Date(e.at).toISOString()}${e.jobId ? ` · ${e.jobId}` : ''}</div>`)}</td></tr>`,
)}</tbody></table></div>`;
}
