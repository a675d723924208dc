import type { DecisionInput, Explanation, RuleTrace } from '../decision.ts';
import type { Verdict } from '../verdict.ts';
import { describeFacts, type FactsNote } from './facts-source.ts';

/** CEL values as JSON: ints are bigints and maps are Maps; a `dyn` condition may return either. */
const celJson = (_key: string, value: unknown): unknown =>
  typeof value === 'bigint' ? (Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()) : value instanceof Map ? Object.fromEntries(value) : value;

const json = (value: unknown): string => JSON.stringify(value, celJson) ?? 'undefined';

/** What `policy explain` (CLI and HTTP) answers: every rule tried, the decision, the verdict, and its facts. */
export interface ExplainedCall {
  /** The call as decided: its stated facts with the catalog's filled in. */
  input: DecisionInput;
  explanation: Explanation;
  verdict: Verdict;
  facts: FactsNote;
}

/**
 * An explained call as JSON (`policy explain --json`, `POST /api/policy/explain`): `{ decision, rules }` as the
 * kernel explains, `verdict` (effect, code, refusal), `facts` (where they came from) and the resolved `input`.
 */
export function explainedJson({ input, explanation, verdict, facts }: ExplainedCall): Record<string, unknown> {
  const { decision: _decision, ...verdictOnly } = verdict;
  return JSON.parse(JSON.stringify({ ...explanation, verdict: verdictOnly, facts, input }, celJson)) as Record<string, unknown>;
}

/** An explained call for a human: the call and its facts, every rule tried and why, the decision, the verdict. */
export function formatExplanation({ input, explanation: { decision, rules }, verdict, facts }: ExplainedCall): string {
  const matched = rules.filter((r) => r.matched).length;
  const idWidth = Math.max(4, ...rules.map((r) => r.id.length));
  const effectWidth = Math.max(...rules.map((r) => (r.labelsOnly ? 'labels only' : r.effect).length), 6);
  const lines = [
    `call ${input.tool} (upstream ${input.server}${input.upstreamUrl ? ` at ${input.upstreamUrl}` : ''}) by ${input.principal}, tenant ${input.tenant}`,
    `  ${describeFacts(facts)}`,
    `  annotations ${json(input.annotations ?? {})}${input.riskTags?.length ? `, risk tags ${input.riskTags.join(', ')}` : ''}${
      input.labels && Object.keys(input.labels).length > 0 ? `, labels ${json(input.labels)}` : ''
    }`,
    `  args ${json(input.args ?? {})}${input.now !== undefined ? `, now ${new Date(input.now).toISOString()}` : ''}`,
    ...(input.definitionChanged ? [`  its definition is not the pinned one (${input.definitionChanged.fields.join(', ') || 'a pack pinned its digest'}), and its upstream holds such calls for approval`] : []),
    ...(input.session ? [`  session ${json({ ...input.session, startedAt: new Date(input.session.startedAt).toISOString() })}`] : []),
    '',
    `rules: ${rules.length} tried, ${matched} matched`,
    ...rules.flatMap((r) => ruleLines(r, idWidth, effectWidth)),
    '',
    'decision',
    `  effect       ${decision.effect}`,
    `  reason       ${decision.reason}`,
  ];
  if (decision.remediation) lines.push(`  remediation  ${decision.remediation}`);
  lines.push(`  rules        ${decision.ruleIds.join(', ') || '(none matched: the default applied)'}`);
  if (Object.keys(decision.constraints).length > 0) lines.push(`  constraints  ${json(decision.constraints)}`);
  for (const t of decision.throttles ?? []) lines.push(`  throttle     ${t.limit} per ${t.windowMs} ms per ${t.per} (${t.ruleId})`);
  for (const r of decision.repeats ?? []) lines.push(`  repeat       at most ${r.limit} same calls per ${r.windowMs} ms per session (${r.ruleId})`);
  for (const { ruleId, per, ...limits } of decision.budgets ?? []) lines.push(`  budget       ${json(limits)} per ${per === 'principal' ? 'principal and day' : 'session'} (${ruleId})`);
  for (const a of decision.approvals ?? []) {
    const { ruleId, ...options } = a;
    lines.push(`  approval     ${ruleId}: ${Object.keys(options).length > 0 ? json(options) : 'the default options'}`);
  }
  for (const e of decision.errors ?? []) lines.push(`  error        ${e.ruleId}: ${e.error}`);
  lines.push(`  snapshot     ${decision.policySnapshot}`);
  lines.push('', 'constraint check (before any approval is asked for)', `  ${constraintCheck(verdict)}`);
  if (verdict.effect !== 'deny' && (decision.throttles?.length || decision.constraints.maxCallsPerSession?.length)) {
    lines.push('  throttles and session quotas are counted live; a call over them is refused then (GH_ERR_THROTTLED, GH_ERR_SESSION_QUOTA)');
  }
  if (verdict.effect !== 'deny' && (decision.repeats?.length || decision.budgets?.length)) {
    lines.push('  repeats and budgets are counted live; a call over them is refused then (GH_ERR_REPEATED_CALL, GH_ERR_BUDGET_EXHAUSTED)');
  }
  lines.push('', `verdict        ${verdict.effect}${verdict.code ? ` (${verdict.code})` : ''}`);
  return lines.join('\n');
}

/** What the constraint check made of the call: not needed, nothing to check, passed (what), or refused (how). */
function constraintCheck({ decision, refusal }: Verdict): string {
  if (refusal) {
    const where = [refusal.ruleId ? `rule ${refusal.ruleId}` : '', refusal.argument ? `argument ${refusal.argument}` : ''].filter(Boolean).join(', ');
    return `refused: ${refusal.code}${where ? ` (${where})` : ''}: ${refusal.message}`;
  }
  if (decision.effect === 'deny') return 'not needed: the decision denies the call';
  const { paths, egress, maxArgBytes } = decision.constraints;
  const checked = [
    paths?.length ? `paths (${paths.map((p) => p.ruleId).join(', ')})` : '',
    egress?.length ? `egress (${egress.map((e) => e.ruleId).join(', ')})` : '',
    maxArgBytes !== undefined ? `maxArgBytes ${maxArgBytes}` : '',
  ].filter(Boolean);
  return checked.length > 0 ? `passed: ${checked.join(', ')}` : 'nothing to check: no matching rule constrains the arguments';
}

function ruleLines(rule: RuleTrace, idWidth: number, effectWidth: number): string[] {
  const mark = rule.matched ? 'MATCH' : '  -  ';
  const effect = rule.labelsOnly ? 'labels only' : rule.effect;
  const lines = [`  ${mark}  ${rule.id.padEnd(idWidth)}  ${effect.padEnd(effectWidth)}  ${rule.why}`];
  if (rule.when) {
    const outcome = rule.when.error !== undefined ? `error: ${rule.when.error}` : json(rule.when.value);
    lines.push(`  ${' '.repeat(5)}  ${' '.repeat(idWidth)}  when ${rule.when.expression} => ${outcome}`);
  }
  return lines;
}
