import { GatewayError } from '../../errors.ts';
import type { AuditRecord } from '../../protocol/audit-record.ts';
import { hashRecord } from '../../protocol/audit-chain.ts';
import type { AuditCallDetail } from '../../audit/query.ts';
import type { DecisionInput } from '../../kernel/decision.ts';
import { formatExplanation } from '../../kernel/authoring/explain-format.ts';
import { explainCall } from '../../kernel/verdict.ts';
import { html, type SafeHtml } from '../html.ts';
import type { ConsolePage, ConsoleServices } from './page.ts';

const JOB_ID = /^[0-9A-Za-z_-]{1,64}$/;

/**
 * A call: one job as the audit trail tells it (GET /api/jobs/:id's data): the decision, and the rule trace of its
 * recorded input explained against the policy in force (saying whether that policy is the one that decided), the
 * recorded arguments, the approval's history, the timings, and every record with its hash, each hash recomputed and
 * each link between the job's records checked.
 */
export const callPage: ConsolePage = {
  path: '/calls/:id',
  section: 'activity',
  role: 'viewer',
  async render({ request, user, services, root }) {
    const id = (request.params as { id: string }).id;
    if (!JOB_ID.test(id)) throw new GatewayError('GH_ERR_INVALID_REQUEST', 'not a job id');
    if (!services.audit) throw new GatewayError('GH_ERR_NOT_IMPLEMENTED', 'this gateway has no audit store to read calls from');
    const call = await services.audit.job(user.tenant, id);
    if (!call) throw new GatewayError('GH_ERR_JOB_NOT_FOUND', `no job ${id} in tenant ${user.tenant}'s audit trail`);
    const decided = call.records.find((r) => r.type === 'job.decided');
    const submitted = call.records[0];
    return {
      title: `${call.tool ?? 'call'} · ${call.outcome}`,
      wide: true,
      body: html`<h1>${call.tool ?? call.jobId} <span class="state ${call.outcome}" id="outcome">${call.outcome}</span></h1>
<section class="card" aria-labelledby="h-call"><h2 id="h-call">The call</h2><dl>
<dt>Job</dt><dd class="mono">${call.jobId}</dd>
<dt>Principal</dt><dd>${call.principal}</dd>
<dt>Session</dt><dd>${call.session ? html`<a class="mono" href="${root}sessions?session=${encodeURIComponent(call.session)}">${call.session}</a>` : '—'}</dd>
<dt>Client</dt><dd>${call.client ? [call.client.name, call.client.version, call.client.era].filter(Boolean).join(' · ') : 'not recorded'}</dd>
<dt>Upstream</dt><dd>${call.server ?? '—'}</dd>
<dt>Submitted</dt><dd><time datetime="${iso(call.at)}">${iso(call.at)}</time></dd>
<dt>Duration</dt><dd>${call.durationMs === undefined ? 'still running, or waiting' : `${call.durationMs} ms`}</dd>
<dt>Arguments digest</dt><dd class="mono">${str(submitted.data.argsDigest) ?? '—'}</dd>
<dt>Tool definition digest</dt><dd class="mono">${str(submitted.data.toolDigest) ?? '—'}</dd>
${resultFacts(call)}
</dl></section>
${decisionSection(decided, services)}
${argumentsSection(decided)}
${approvalSection(call, root)}
${recordsSection(call)}`,
    };
  },
};

function decisionSection(decided: AuditRecord | undefined, services: ConsoleServices): SafeHtml {
  if (!decided) return html`<section class="card" aria-labelledby="h-decision"><h2 id="h-decision">Decision</h2><p class="muted">No decision was recorded: the call ended before the policy was asked.</p></section>`;
  const data = decided.data;
  const snapshot = str(data.policySnapshot);
  const current = services.kernel.bundle.snapshot;
  const input = data.input as DecisionInput | undefined;
  let trace: SafeHtml;
  if (!input) {
    trace = html`<p class="muted">The decision's input was not recorded, so it cannot be explained again.</p>`;
  } else {
    const { explanation, verdict } = explainCall(services.kernel, input);
    const text = formatExplanation({ input, explanation, verdict, facts: { source: { from: 'recorded', file: 'its job.decided record', recordedAt: decided.at }, stated: [] } });
    const same = snapshot === current;
    trace = html`<p class="${same ? 'ok' : 'note'}" id="trace-note">${
      same
        ? `The policy in force (snapshot ${short(current)}) is the one that decided: this is the trace of that decision.`
        : `The policy changed since this call was decided (by snapshot ${short(snapshot)}); this is how the policy in force now (snapshot ${short(current)}) decides the recorded call.`
    }${input.args === undefined ? ' Its arguments were not recorded (audit.recordArguments: digest), so conditions on them see none.' : ''}</p>
<pre id="trace">${text}</pre>`;
  }
  const refusal = data.refusal as { code?: string } | undefined;
  return html`<section class="card" aria-labelledby="h-decision"><h2 id="h-decision">Decision</h2><dl>
<dt>Effect</dt><dd><span class="state ${str(data.effect)}">${str(data.effect)}</span></dd>
<dt>Reason</dt><dd>${str(data.reason)}</dd>
<dt>Rules</dt><dd>${Array.isArray(data.ruleIds) ? data.ruleIds.join(', ') : '—'}</dd>
<dt>Policy snapshot</dt><dd class="mono">${snapshot}</dd>
${refusal && html`<dt>Constraint refusal</dt><dd>${refusal.code}</dd>`}
</dl><h3>Rule trace</h3>${trace}</section>`;
}

function argumentsSection(decided: AuditRecord | undefined): SafeHtml {
  const args = (decided?.data.input as DecisionInput | undefined)?.args;
  return html`<section class="card" aria-labelledby="h-args"><h2 id="h-args">Arguments</h2>${
    args === undefined ? html`<p class="muted">Not recorded (only their digest).</p>` : html`<p class="muted">As the audit recorded them (secrets redacted, per audit.recordArguments).</p><pre>${JSON.stringify(args, null, 2)}</pre>`
  }</section>`;
}

function approvalSection(call: AuditCallDetail, root: string): SafeHtml | undefined {
  const steps = call.records.filter((r) => r.type.startsWith('approval.') || r.type === 'job.approval_required' || r.type === 'job.approval_channel');
  if (steps.length === 0) return undefined;
  const a = call.approval;
  return html`<section class="card" aria-labelledby="h-approval"><h2 id="h-approval">Approval</h2>
${a && html`<p>${a.id ? html`<a href="${root}approvals/${a.id}">${a.id}</a> · ` : ''}${a.channel ? `channel ${a.channel}` : ''}${a.state ? ` · ${a.state}${a.by ? ` by ${a.by}` : ''}` : ' · waiting'}${a.waitMs !== undefined ? ` · waited ${a.waitMs} ms` : ''}</p>`}
<ol class="timeline">${steps.map((r) => html`<li><strong>${r.type}</strong> by ${r.actor}, +${r.at - call.at} ms${str(r.data.reason) ? ` — ${str(r.data.reason)}` : ''}${str(r.data.channel) ? ` (channel ${str(r.data.channel)})` : ''}</li>`)}</ol></section>`;
}

/**
 * Every record of the job with its hash: each recomputed from the record, and each `prev` checked where the record
 * before it is also the job's. The links to other jobs' records are the whole chain's: `gatehouse audit verify`.
 */
function recordsSection(call: AuditCallDetail): SafeHtml {
  const bySeq = new Map(call.records.map((r) => [r.seq, r]));
  const checks = call.records.map((record) => {
    const { hash, ...rest } = record;
    const own = hashRecord(rest) === hash;
    const before = bySeq.get(record.seq - 1);
    const link = before ? before.hash === record.prev : undefined;
    return { record, own, link };
  });
  const ok = checks.every((c) => c.own && c.link !== false);
  return html`<section class="card" aria-labelledby="h-records"><h2 id="h-records">Audit records</h2>
<p id="chain" class="${ok ? 'ok' : 'bad'}">${ok ? `The chain verifies here: all ${checks.length} records hash to what they say, and every link between them holds.` : 'The chain does NOT verify here: a record does not hash to what it says, or a link is broken (GH_ERR_AUDIT_BROKEN).'}</p>
<div class="scroll"><table><thead><tr><th scope="col">Seq</th><th scope="col">Record</th><th scope="col">By</th><th scope="col">At</th><th scope="col">Hash</th><th scope="col">Prev</th><th scope="col">Verifies</th></tr></thead>
<tbody>${checks.map(
    ({ record, own, link }) =>
      html`<tr><td>${record.seq}</td><td>${record.type}</td><td>${record.actor}</td><td>+${record.at - call.at} ms</td><td class="mono hash">${record.hash}</td><td class="mono">${record.prev}</td><td class="${own && link !== false ? 'ok' : 'bad'}">${own ? 'hash ok' : 'hash BROKEN'}${link === undefined ? '' : link ? ', link ok' : ', link BROKEN'}</td></tr>`,
  )}</tbody></table></div></section>`;
}

/** What the terminal record says of the run: how long the upstream took, where the result was kept, why it failed. */
function resultFacts(call: AuditCallDetail): SafeHtml | undefined {
  const end = call.records.find((r) => /^job\.(succeeded|failed|timeout|cancelled|denied|outcome_unknown)$/.test(r.type));
  if (!end) return undefined;
  const data = end.data;
  return html`<dt>Ended by</dt><dd>${end.type} (${end.actor})</dd>
${typeof data.executionMs === 'number' && html`<dt>Upstream time</dt><dd>${data.executionMs} ms</dd>`}
${str(data.errorCode) && html`<dt>Error</dt><dd>${str(data.errorCode)}</dd>`}
${str(data.resultDigest) && html`<dt>Result</dt><dd><span class="mono">${str(data.resultDigest)}</span>, ${typeof data.resultBytes === 'number' ? data.resultBytes.toLocaleString('en') : '?'} bytes <span class="muted">(JCS of what the client got, after redaction and the output cap; the result itself is never recorded)</span></dd>`}`;
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const short = (snapshot: string | undefined) => (snapshot ? snapshot.replace(/^sha256:/, '').slice(0, 12) : 'unknown');
const iso = (ms: number) => new Date(ms).toISOString();
