import type { DecisionInput, Explanation, RuleTrace } from '../kernel/decision.ts';

/** CEL values as JSON: ints are bigints and maps are Maps; a `dyn` condition may return either. */
const celJson = (_key: string, value: unknown): unknown =>
  typeof value === 'bigint' ? (Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()) : value instanceof Map ? Object.fromEntries(value) : value;

const json = (value: unknown): string => JSON.stringify(value, celJson) ?? 'undefined';

/** An explanation as JSON (`policy explain --json`). */
export const explanationJson = (explanation: Explanation): string => JSON.stringify(explanation, celJson, 2);

/** An explanation for a human: the call, every rule tried and why it matched or not, then the decision. */
export function formatExplanation(input: DecisionInput, { decision, rules }: Explanation): string {
  const matched = rules.filter((r) => r.matched).length;
  const idWidth = Math.max(4, ...rules.map((r) => r.id.length));
  const effectWidth = Math.max(...rules.map((r) => r.effect.length), 6);
  const lines = [
    `call ${input.tool} (upstream ${input.server}) by ${input.principal}, tenant ${input.tenant}`,
    `  annotations ${json(input.annotations ?? {})}${input.riskTags?.length ? `, risk tags ${input.riskTags.join(', ')}` : ''}${
      input.labels && Object.keys(input.labels).length > 0 ? `, labels ${json(input.labels)}` : ''
    }`,
    `  args ${json(input.args ?? {})}${input.now !== undefined ? `, now ${new Date(input.now).toISOString()}` : ''}`,
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
  for (const a of decision.approvals ?? []) {
    const { ruleId, ...options } = a;
    lines.push(`  approval     ${ruleId}: ${Object.keys(options).length > 0 ? json(options) : 'the default options'}`);
  }
  for (const e of decision.errors ?? []) lines.push(`  error        ${e.ruleId}: ${e.error}`);
  lines.push(`  snapshot     ${decision.policySnapshot}`);
  return lines.join('\n');
}

function ruleLines(rule: RuleTrace, idWidth: number, effectWidth: number): string[] {
  const mark = rule.matched ? 'MATCH' : '  -  ';
  const lines = [`  ${mark}  ${rule.id.padEnd(idWidth)}  ${rule.effect.padEnd(effectWidth)}  ${rule.why}`];
  if (rule.when) {
    const outcome = rule.when.error !== undefined ? `error: ${rule.when.error}` : json(rule.when.value);
    lines.push(`  ${' '.repeat(5)}  ${' '.repeat(idWidth)}  when ${rule.when.expression} => ${outcome}`);
  }
  return lines;
}
