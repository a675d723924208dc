import type { BudgetUse, SessionRecord } from '../../src/protocol/session-record.ts';

/**
 * A session record as the fields of one Redis hash, so that an update sends only the fields it changed instead of
 * the whole record: scalars as they are, lists as JSON, and each budget and loop-breaker entry in a field of its
 * own, in a short text that needs no escaping inside the batch's JSON (session-batch.ts), since every call
 * rewrites them and the bytes it sends cost the gateway CPU:
 * - `b:<ruleId>`: a budget's counts, `<calls>,<outputBytes>,<upstreamMs>`, and `bt:<ruleId>` its distinct tools
 *   (JSON), written only when they change;
 * - `r:<key>`: a loop-breaker entry, `until` then the times newest first, each as the step back from the one
 *   before (`1785197404305,600000,1000,1000`).
 * `v` is the version token a compare-and-set checks; it is not part of the record. The layout before this one
 * (a budget's and an entry's JSON, `{"calls":…}` and `{"times":[…],"until":…}`) still reads: those records live
 * on until they expire.
 */
export const VERSION_FIELD = 'v';
const BUDGET = 'b:';
const BUDGET_TOOLS = 'bt:';
const REPEAT = 'r:';

/** The fields to set and to delete that turn `before` into `after` (the whole record when there was none). */
export interface FieldChanges {
  set: string[];
  del: string[];
}

/**
 * Budget uses read from the JSON layout: their tools are in no `bt:` field yet, so the first write of one that
 * changed writes its tools too.
 */
const inJson = new WeakSet<BudgetUse>();

/**
 * What changed, found by reference: `change` functions return new objects for what they change and keep the
 * others (src/session/admission.ts), so an unchanged list or entry is the very object it was. A new object with
 * the same content is written again, which is only a few bytes more.
 */
export function fieldChanges(before: SessionRecord | undefined, after: SessionRecord): FieldChanges {
  const set: string[] = [];
  const del: string[] = [];
  const b = before;
  if (b?.id !== after.id) set.push('id', after.id);
  if (b?.startedAt !== after.startedAt) set.push('startedAt', String(after.startedAt));
  if (b?.calls !== after.calls) set.push('calls', String(after.calls));
  if (b?.approvals !== after.approvals) set.push('approvals', String(after.approvals));
  if (b?.tools !== after.tools) set.push('tools', JSON.stringify(after.tools));
  if (b?.riskTags !== after.riskTags) set.push('riskTags', JSON.stringify(after.riskTags));
  if (b?.labels !== after.labels) set.push('labels', JSON.stringify(after.labels));
  if (b?.client !== after.client) {
    if (after.client) set.push('client', JSON.stringify(after.client));
    else del.push('client');
  }
  if (b?.budgets !== after.budgets) {
    for (const rule in after.budgets) {
      const was = b?.budgets[rule];
      const use = after.budgets[rule];
      if (was === use) continue;
      set.push(BUDGET + rule, `${use.calls},${use.outputBytes},${use.upstreamMs}`);
      if (was && !inJson.has(was) ? was.tools !== use.tools : use.tools.length > 0) set.push(BUDGET_TOOLS + rule, JSON.stringify(use.tools));
    }
    if (b) for (const rule in b.budgets) if (!(rule in after.budgets)) del.push(BUDGET + rule, BUDGET_TOOLS + rule);
  }
  if (b?.repeats !== after.repeats) {
    for (const key in after.repeats) {
      const entry = after.repeats[key];
      if (b?.repeats[key] !== entry) set.push(REPEAT + key, repeatText(entry));
    }
    if (b) for (const key in b.repeats) if (!(key in after.repeats)) del.push(REPEAT + key);
  }
  return { set, del };
}

/** The record a hash holds (HGETALL's flat field, value list), and its version token; undefined for no hash. */
export function recordOfFields(flat: readonly string[]): { record: SessionRecord; version: string } | undefined {
  if (flat.length === 0) return undefined;
  const record: SessionRecord = { id: '', startedAt: 0, calls: 0, tools: [], riskTags: [], labels: [], approvals: 0, budgets: {}, repeats: {} };
  let version = '';
  let budgetTools: Record<string, string[]> | undefined;
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i];
    const value = flat[i + 1];
    if (field === VERSION_FIELD) version = value;
    else if (field === 'id') record.id = value;
    else if (field === 'startedAt' || field === 'calls' || field === 'approvals') record[field] = Number(value);
    else if (field === 'tools' || field === 'riskTags' || field === 'labels' || field === 'client') record[field] = JSON.parse(value);
    else if (field.startsWith(BUDGET)) record.budgets[field.slice(BUDGET.length)] = budgetOfText(value);
    else if (field.startsWith(BUDGET_TOOLS)) (budgetTools ??= {})[field.slice(BUDGET_TOOLS.length)] = JSON.parse(value);
    else if (field.startsWith(REPEAT)) record.repeats[field.slice(REPEAT.length)] = repeatOfText(value);
  }
  for (const rule in budgetTools) if (record.budgets[rule]) record.budgets[rule].tools = budgetTools[rule];
  return version ? { record, version } : undefined;
}

function budgetOfText(text: string): BudgetUse {
  if (text.startsWith('{')) {
    const use = JSON.parse(text) as BudgetUse;
    inJson.add(use);
    return use;
  }
  const [calls, outputBytes, upstreamMs] = text.split(',');
  return { calls: Number(calls), outputBytes: Number(outputBytes), upstreamMs: Number(upstreamMs), tools: [] };
}

type RepeatEntry = SessionRecord['repeats'][string];

function repeatText(entry: RepeatEntry): string {
  const { times, until } = entry;
  // Times are whole ms (Clock.now); any other number is kept exactly, as JSON (a step of 0.1 would not add up).
  if (!Number.isInteger(until)) return JSON.stringify(entry);
  let text = String(until);
  let after = until;
  for (let i = times.length - 1; i >= 0; i--) {
    if (!Number.isInteger(times[i])) return JSON.stringify(entry);
    text += ',' + (after - times[i]);
    after = times[i];
  }
  return text;
}

function repeatOfText(text: string): RepeatEntry {
  if (text.startsWith('{')) return JSON.parse(text) as RepeatEntry;
  const parts = text.split(',');
  const until = Number(parts[0]);
  const times = new Array<number>(parts.length - 1);
  let time = until;
  for (let i = 1; i < parts.length; i++) times[parts.length - 1 - i] = time -= Number(parts[i]);
  return { times, until };
}
