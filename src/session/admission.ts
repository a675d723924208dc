import type { BudgetUse, SessionLabel, SessionRecord } from '../protocol/session-record.ts';
import type { BudgetSpec, RepeatSpec, SessionView } from '../kernel/decision.ts';
import type { RefusalDetail } from '../protocol/tool-results.ts';
import type { ErrorCode } from '../errors.ts';
import { duration } from '../enforcement/throttle.ts';

/**
 * The pure part of session state: what a call that is about to run does to its session's record (and to its
 * principal's day, for `per: principal` budgets), and what its result adds. The SessionFacts port applies these
 * atomically, so the check and the count are one step: under any number of concurrent calls, exactly `limit` run.
 */

/** Bounds on what one record keeps, so a session that calls without end cannot grow it without end. */
const MAX_TOOLS = 1_000;
const MAX_RISK_TAGS = 100;
/** Label settings kept per session (each with the call and rule that set it). */
const MAX_LABELS = 100;
/** Distinct calls the loop breaker remembers per session: past it, those whose window ends first are forgotten. */
const MAX_REPEAT_KEYS = 256;

/** One call about to run, as its session sees it. */
export interface CallAdmission {
  sessionKey: string;
  /** The principal's day record, when a `per: principal` budget applies. */
  dayKey?: string;
  /** The namespaced tool, or for another request its method and target (`resources/read file:///a.md`). */
  tool: string;
  /** A tool call: only tool calls add to `session.tools` and count against `distinctTools`. */
  toolCall: boolean;
  argsDigest: string;
  riskTags: readonly string[];
  /** It passed a human's approval. */
  approved: boolean;
  client?: { name: string; version: string };
  now: number;
  repeats: readonly RepeatSpec[];
  budgets: readonly BudgetSpec[];
}

export interface SessionRefusal {
  code: Extract<ErrorCode, 'GH_ERR_REPEATED_CALL' | 'GH_ERR_BUDGET_EXHAUSTED'>;
  message: string;
  detail: RefusalDetail;
}

export function emptyRecord(id: string, now: number): SessionRecord {
  return { id, startedAt: now, calls: 0, tools: [], riskTags: [], labels: [], approvals: 0, budgets: {}, repeats: {} };
}

const NO_USE: BudgetUse = Object.freeze({ calls: 0, outputBytes: 0, upstreamMs: 0, tools: [] as string[] });

/**
 * Checks the call against its loop breakers and budgets and, when none refuses it and `count` is set, counts it:
 * the next records (undefined where nothing changes) and the refusal, if any. `current` is [session, day].
 */
export function admit(current: readonly (SessionRecord | undefined)[], call: CallAdmission, count: boolean): { next: (SessionRecord | undefined)[]; refusal?: SessionRefusal } {
  const session = current[0] ?? emptyRecord(call.sessionKey, call.now);
  const day = call.dayKey ? (current[1] ?? emptyRecord(call.dayKey, call.now)) : undefined;
  const refusal = repeatRefusal(session, call) ?? budgetRefusal(session, day, call);
  if (refusal || !count) return { next: [undefined, undefined], ...(refusal ? { refusal } : {}) };
  return { next: [countInSession(session, call), day && { ...day, budgets: countInBudgets(day, call, 'principal') }] };
}

/**
 * The session's record with these labels set (by a rule when a call runs, or by the result scanner): each kept
 * with the call and rule that set it, so an approver can be shown why; one already set by the same rule is not
 * added again. Past MAX_LABELS settings, new ones are dropped.
 */
export function withLabels(record: SessionRecord | undefined, sessionKey: string, labels: readonly SessionLabel[], now: number): SessionRecord | undefined {
  const current = record ?? emptyRecord(sessionKey, now);
  const next = [...current.labels];
  for (const label of labels) {
    if (next.length >= MAX_LABELS) break;
    if (!next.some((had) => had.name === label.name && had.by === label.by)) next.push(label);
  }
  return next.length === current.labels.length ? undefined : { ...current, labels: next };
}

/** Adds what a result used (its bytes, the upstream's time) to the budgets that let the call run. */
export function addResult(current: readonly (SessionRecord | undefined)[], budgets: readonly BudgetSpec[], keys: { sessionKey: string; dayKey?: string; now: number }, used: { outputBytes: number; upstreamMs: number }): (SessionRecord | undefined)[] {
  const records = [current[0] ?? emptyRecord(keys.sessionKey, keys.now), keys.dayKey ? (current[1] ?? emptyRecord(keys.dayKey, keys.now)) : undefined];
  return records.map((record, i) => {
    if (!record) return undefined;
    const mine = budgets.filter((b) => (b.per === 'session') === (i === 0));
    if (mine.length === 0) return undefined;
    const next = { ...record.budgets };
    for (const { ruleId } of mine) {
      const use = next[ruleId] ?? NO_USE;
      next[ruleId] = { ...use, outputBytes: use.outputBytes + used.outputBytes, upstreamMs: use.upstreamMs + used.upstreamMs };
    }
    return { ...record, budgets: next };
  });
}

/**
 * What CEL reads as `session`: the record's facts, none of its counts. A session's first call starts it (`now`),
 * and `client` is the calling client's, which that call already knows.
 */
export function viewOf(record: SessionRecord | undefined, key: string, now: number, client?: { name: string; version: string }): SessionView {
  if (!record) return { id: key, calls: 0, tools: [], riskTags: [], labels: [], startedAt: now, approvals: 0, client: client ?? { name: '', version: '' } };
  return {
    id: record.id,
    calls: record.calls,
    tools: record.tools,
    riskTags: record.riskTags,
    labels: [...new Set(record.labels.map((l) => l.name))],
    startedAt: record.startedAt,
    approvals: record.approvals,
    client: record.client ?? client ?? { name: '', version: '' },
  };
}

function repeatRefusal(session: SessionRecord, call: CallAdmission): SessionRefusal | undefined {
  for (const spec of call.repeats) {
    const times = session.repeats[repeatKey(spec, call)]?.times;
    if (!times) continue;
    // Oldest first: those past the window are at the start.
    const first = firstAfter(times, call.now - spec.windowMs);
    const count = times.length - first;
    if (count < spec.limit) continue;
    const retryAfterMs = times[times.length - spec.limit] + spec.windowMs - call.now;
    return {
      code: 'GH_ERR_REPEATED_CALL',
      message:
        `You have called ${call.tool} with exactly these arguments ${count} times in the last ${duration(spec.windowMs)}, ` +
        `which is as often as rule ${spec.ruleId} allows: this looks like a loop, and the same call will not give a different result. ` +
        `Do not repeat it: change the arguments, try another approach, or ask the user how to go on.`,
      detail: { ruleId: spec.ruleId, retryAfterMs },
    };
  }
  return undefined;
}

const LIMITS = [
  ['calls', 'calls', 'calls'],
  ['outputBytes', 'outputBytes', 'bytes of output'],
  ['upstreamTimeMs', 'upstreamMs', 'ms of upstream time'],
] as const;

function budgetRefusal(session: SessionRecord, day: SessionRecord | undefined, call: CallAdmission): SessionRefusal | undefined {
  for (const spec of call.budgets) {
    const use = (spec.per === 'session' ? session : day!).budgets[spec.ruleId] ?? NO_USE;
    if (!spent(spec, use, call)) continue;
    const left: Record<string, number> = {};
    const used: string[] = [];
    for (const [limit, counted, unit] of LIMITS) {
      const max = spec[limit];
      if (max === undefined) continue;
      left[limit] = Math.max(0, max - use[counted]);
      if (left[limit] === 0) used.push(`${use[counted]} of ${max} ${unit}`);
    }
    if (spec.distinctTools !== undefined && call.toolCall) {
      left.distinctTools = Math.max(0, spec.distinctTools - use.tools.length);
      if (left.distinctTools === 0 && !use.tools.includes(call.tool)) used.push(`${use.tools.length} of ${spec.distinctTools} distinct tools (this one would be new)`);
    }
    const whose = spec.per === 'session' ? 'this session' : 'you today (UTC)';
    const remaining = Object.entries(left).filter(([, n]) => n > 0);
    return {
      code: 'GH_ERR_BUDGET_EXHAUSTED',
      message:
        `The budget of rule ${spec.ruleId} for ${whose} is used up: ${used.join(', ')}. ` +
        `Left: ${remaining.length > 0 ? remaining.map(([k, n]) => `${n} ${k}`).join(', ') : 'nothing'}. ` +
        (spec.per === 'session' ? 'Do not retry in this session.' : 'Do not retry before tomorrow (UTC).'),
      detail: { ruleId: spec.ruleId, per: spec.per, left },
    };
  }
  return undefined;
}

/** Whether any limit of the budget is used up for this call (checked on every call: it allocates nothing). */
function spent(spec: BudgetSpec, use: BudgetUse, call: CallAdmission): boolean {
  for (const [limit, counted] of LIMITS) {
    const max = spec[limit];
    if (max !== undefined && use[counted] >= max) return true;
  }
  return spec.distinctTools !== undefined && call.toolCall && use.tools.length >= spec.distinctTools && !use.tools.includes(call.tool);
}

function countInSession(session: SessionRecord, call: CallAdmission): SessionRecord {
  const next: SessionRecord = {
    ...session,
    calls: session.calls + 1,
    tools: call.toolCall ? withItem(session.tools, call.tool, MAX_TOOLS) : session.tools,
    riskTags: call.riskTags.reduce((tags, tag) => withItem(tags, tag, MAX_RISK_TAGS), session.riskTags),
    approvals: session.approvals + (call.approved ? 1 : 0),
    budgets: countInBudgets(session, call, 'session'),
  };
  if (!session.client && call.client) next.client = call.client;
  if (call.repeats.length > 0 || Object.keys(session.repeats).length > 0) next.repeats = countRepeats(session.repeats, call);
  return next;
}

function countInBudgets(record: SessionRecord, call: CallAdmission, per: BudgetSpec['per']): Record<string, BudgetUse> {
  const mine = call.budgets.filter((b) => b.per === per);
  if (mine.length === 0) return record.budgets;
  const next = { ...record.budgets };
  for (const spec of mine) {
    const use = next[spec.ruleId] ?? NO_USE;
    next[spec.ruleId] = { ...use, calls: use.calls + 1, tools: spec.distinctTools === undefined || !call.toolCall ? use.tools : withItem(use.tools, call.tool, MAX_TOOLS) };
  }
  return next;
}

/** The loop breaker's entries with this call added, and those whose window has passed dropped. */
function countRepeats(repeats: SessionRecord['repeats'], call: CallAdmission): SessionRecord['repeats'] {
  const next: SessionRecord['repeats'] = {};
  let kept = 0;
  for (const key in repeats) {
    const entry = repeats[key];
    if (entry.until > call.now) (next[key] = entry), kept++;
  }
  for (const spec of call.repeats) {
    const key = repeatKey(spec, call);
    const times = next[key]?.times ?? [];
    if (!next[key]) kept++;
    const recent = times.slice(firstAfter(times, call.now - spec.windowMs));
    recent.push(call.now);
    next[key] = { times: recent, until: call.now + spec.windowMs };
  }
  if (kept > MAX_REPEAT_KEYS) for (const key of Object.keys(next).sort((a, b) => next[a].until - next[b].until).slice(0, kept - MAX_REPEAT_KEYS)) delete next[key];
  return next;
}

/** 64 bits of the arguments' digest are plenty to tell a session's calls apart, and keep its record small. */
const repeatKey = (spec: RepeatSpec, call: CallAdmission): string => `${spec.ruleId} ${call.tool} ${call.argsDigest.slice(-16)}`;
/**
 * The index of the first time after `after` in times kept oldest first, as calls append them (their length when
 * none is). A clock that steps back only keeps an entry a little longer: the loop breaker errs on the strict side.
 */
function firstAfter(times: readonly number[], after: number): number {
  let i = 0;
  while (i < times.length && times[i] <= after) i++;
  return i;
}
const withItem = (items: string[], item: string, max: number): string[] => (items.includes(item) || items.length >= max ? items : [...items, item]);
