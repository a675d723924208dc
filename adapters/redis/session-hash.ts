import type { SessionRecord } from '../../src/protocol/session-record.ts';

/**
 * A session record as the fields of one Redis hash, so that an update sends only the fields it changed instead of
 * the whole record: scalars as they are, lists as JSON, and each budget (`b:<ruleId>`) and loop-breaker entry
 * (`r:<key>`) in a field of its own. `v` is the version token a compare-and-set checks; it is not part of the record.
 */
export const VERSION_FIELD = 'v';
const BUDGET = 'b:';
const REPEAT = 'r:';

/** The fields to set and to delete that turn `before` into `after` (the whole record when there was none). */
export interface FieldChanges {
  set: string[];
  del: string[];
}

/**
 * What changed, found by reference: `change` functions return new objects for what they change and keep the
 * others (src/session/admission.ts), so an unchanged list or entry is the very object it was. A new object with
 * the same content is written again, which is only a few bytes more.
 */
export function fieldChanges(before: SessionRecord | undefined, after: SessionRecord): FieldChanges {
  const set: string[] = [];
  const del: string[] = [];
  const put = (field: string, value: string) => set.push(field, value);
  const b = before;
  if (b?.id !== after.id) put('id', after.id);
  if (b?.startedAt !== after.startedAt) put('startedAt', String(after.startedAt));
  if (b?.calls !== after.calls) put('calls', String(after.calls));
  if (b?.approvals !== after.approvals) put('approvals', String(after.approvals));
  if (b?.tools !== after.tools) put('tools', JSON.stringify(after.tools));
  if (b?.riskTags !== after.riskTags) put('riskTags', JSON.stringify(after.riskTags));
  if (b?.labels !== after.labels) put('labels', JSON.stringify(after.labels));
  if (b?.client !== after.client) {
    if (after.client) put('client', JSON.stringify(after.client));
    else del.push('client');
  }
  entryChanges(BUDGET, b?.budgets, after.budgets, set, del);
  entryChanges(REPEAT, b?.repeats, after.repeats, set, del);
  return { set, del };
}

function entryChanges(prefix: string, before: Record<string, unknown> | undefined, after: Record<string, unknown>, set: string[], del: string[]): void {
  if (before === after) return;
  for (const key in after) if (before?.[key] !== after[key]) set.push(prefix + key, JSON.stringify(after[key]));
  if (before) for (const key in before) if (!(key in after)) del.push(prefix + key);
}

/** The record a hash holds (HGETALL's flat field, value list), and its version token; undefined for no hash. */
export function recordOfFields(flat: readonly string[]): { record: SessionRecord; version: string } | undefined {
  if (flat.length === 0) return undefined;
  const record: SessionRecord = { id: '', startedAt: 0, calls: 0, tools: [], riskTags: [], labels: [], approvals: 0, budgets: {}, repeats: {} };
  let version = '';
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i];
    const value = flat[i + 1];
    if (field === VERSION_FIELD) version = value;
    else if (field === 'id') record.id = value;
    else if (field === 'startedAt' || field === 'calls' || field === 'approvals') record[field] = Number(value);
    else if (field === 'tools' || field === 'riskTags' || field === 'labels' || field === 'client') record[field] = JSON.parse(value);
    else if (field.startsWith(BUDGET)) record.budgets[field.slice(BUDGET.length)] = JSON.parse(value);
    else if (field.startsWith(REPEAT)) record.repeats[field.slice(REPEAT.length)] = JSON.parse(value);
  }
  return version ? { record, version } : undefined;
}
