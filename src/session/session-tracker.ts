import type { SessionFacts, SessionSlot } from '../ports.ts';
import type { CallLogFields, Logger } from '../log.ts';
import type { Decision, SessionView } from '../kernel/decision.ts';
import type { NormalizedCall } from '../protocol/call.ts';
import type { CallToolResult } from '../protocol/mcp.ts';
import { asGatewayError, GatewayError } from '../errors.ts';
import { refusal } from '../enforcement/refusal.ts';
import { outputBytes } from '../enforcement/output-limit.ts';
import { admit, addResult, viewOf, withLabels, type CallAdmission } from './admission.ts';
import type { SessionLabel } from '../protocol/session-record.ts';
import { principalDayKey, PRINCIPAL_DAY_TTL_MS, sessionKeyOf } from './session-key.ts';

export interface SessionOptions {
  /** How long a session's record lives after its last call (config `sessions.idle`). */
  idleMs: number;
  /** A stateless client's session: its principal's window of this length (config `sessions.window`). */
  windowMs: number;
}

/** One call as its session tracks it, from before its decision to its result. */
export interface TrackedCall {
  sessionKey: string;
  /** Set once the call was counted with a `per: principal` budget. */
  dayKey?: string;
}

/** What the pipeline tells the tracker about a call about to run. */
export interface RunningCall {
  tool: string;
  /** False for a resource, prompt or completion request. */
  toolCall: boolean;
  argsDigest: string;
  riskTags: readonly string[];
  approved: boolean;
  now: number;
  /** The rules' `labels` for a call that runs: set in the same atomic step that counts it. */
  labels?: readonly SessionLabel[];
}

/**
 * The session side of the call path: the facts a decision reads (`session`), and the loop breakers and budgets a
 * call is counted against right before it runs, then its result. Fails closed: facts or counts that cannot be read
 * refuse the call, as throttles do. Used only while the policy needs it (`Kernel.usesSession`): a policy with no
 * rule that reads `session` or has a `repeat` or `budget` pays nothing here.
 */
export class SessionTracker {
  constructor(
    private readonly facts: SessionFacts,
    private readonly options: SessionOptions,
    private readonly log: Logger,
  ) {}

  track(call: Pick<NormalizedCall, 'caller' | 'meta'>, now: number): TrackedCall {
    return { sessionKey: sessionKeyOf(call.caller, call.meta, now, this.options.windowMs) };
  }

  /**
   * The session's facts as a decision reads them, and its labels with the calls and rules that set them (what an
   * approver is shown). Rejects with a coded error when they cannot be read.
   */
  async view(tracked: TrackedCall, call: Pick<NormalizedCall, 'client'>, now: number): Promise<{ view: SessionView; labels: readonly SessionLabel[] }> {
    const [record] = await this.facts.read([tracked.sessionKey]);
    return { view: viewOf(record, tracked.sessionKey, now, clientOf(call)), labels: record?.labels ?? [] };
  }

  /**
   * Checks the call against the decision's loop breakers and budgets and, with `take`, counts it in its session
   * (and its principal's day) and sets its rules' labels, in one atomic step. Resolves to the refusal (GH_ERR_REPEATED_CALL,
   * GH_ERR_BUDGET_EXHAUSTED, or the store's failure), or undefined when admitted.
   */
  async admit(mode: 'take' | 'peek', tracked: TrackedCall, decision: Decision, call: Pick<NormalizedCall, 'caller' | 'client'>, running: RunningCall, about: () => CallLogFields): Promise<GatewayError | undefined> {
    const budgets = decision.budgets ?? [];
    const dayKey = budgets.some((b) => b.per === 'principal') ? principalDayKey(call.caller, running.now) : undefined;
    const { labels = [], ...counted } = running;
    const admission: CallAdmission = {
      sessionKey: tracked.sessionKey,
      ...(dayKey ? { dayKey } : {}),
      ...counted,
      ...(clientOf(call) ? { client: clientOf(call) } : {}),
      repeats: decision.repeats ?? [],
      budgets,
    };
    try {
      const refused = await this.facts.update(this.slots(tracked.sessionKey, dayKey), (current) => {
        const { next, refusal } = admit(current, admission, mode === 'take');
        if (refusal || mode === 'peek' || labels.length === 0) return { next, value: refusal };
        const session = next[0] ?? current[0];
        return { next: [withLabels(session, tracked.sessionKey, labels, running.now) ?? next[0], ...next.slice(1)], value: undefined };
      });
      if (mode === 'take' && dayKey) tracked.dayKey = dayKey;
      return refused && refusal(refused.code, refused.message, refused.detail);
    } catch (err) {
      const error = asGatewayError(err);
      this.log.error('could not count the call in its session; denying (fail closed)', { ...about(), code: error.code, error: error.message });
      return new GatewayError(error.code, `The call's session limits could not be checked, so it did not run: ${error.message}`);
    }
  }

  /** Whether a result must be counted: a budget of the decision limits output bytes or upstream time. */
  static countsResults(decision: Decision): boolean {
    return Boolean(decision.budgets?.some((b) => b.outputBytes !== undefined || b.upstreamTimeMs !== undefined));
  }

  /**
   * Adds what the result used (its size counted as `maxOutputBytes` counts it, and the upstream's time) to the
   * decision's budgets: known only now, they refuse the NEXT call once used up. A failure to count is logged; the
   * result is the caller's whatever happens here.
   */
  async resultCame(tracked: TrackedCall, decision: Decision, result: CallToolResult, upstreamMs: number, now: number, about: () => CallLogFields): Promise<void> {
    const budgets = (decision.budgets ?? []).filter((b) => b.outputBytes !== undefined || b.upstreamTimeMs !== undefined);
    const used = { outputBytes: outputBytes(result), upstreamMs: Math.max(0, upstreamMs) };
    const keys = { sessionKey: tracked.sessionKey, ...(tracked.dayKey ? { dayKey: tracked.dayKey } : {}), now };
    try {
      await this.facts.update(this.slots(tracked.sessionKey, tracked.dayKey), (current) => ({ next: addResult(current, budgets, keys, used), value: undefined }));
    } catch (err) {
      const error = asGatewayError(err);
      this.log.warn("could not count a call's result against its budgets", { ...about(), code: error.code, error: error.message });
    }
  }

  /**
   * Sets labels on the session, atomically with every other update of it: what rules (`labels:`) and the result
   * scanner will call (issue 15). Rejects with a coded error when the session cannot be written.
   */
  async label(tracked: TrackedCall, labels: readonly SessionLabel[], now: number): Promise<void> {
    if (labels.length === 0) return;
    await this.facts.update(this.slots(tracked.sessionKey, undefined), ([current]) => ({ next: [withLabels(current, tracked.sessionKey, labels, now)], value: undefined }));
  }

  private slots(sessionKey: string, dayKey: string | undefined): SessionSlot[] {
    const session = { key: sessionKey, ttlMs: this.options.idleMs };
    return dayKey ? [session, { key: dayKey, ttlMs: PRINCIPAL_DAY_TTL_MS }] : [session];
  }
}

/** The client's `clientInfo` as the session keeps it, when it sent one. */
const clientOf = (call: Pick<NormalizedCall, 'client'>): { name: string; version: string } | undefined =>
  call.client?.name ? { name: call.client.name, version: call.client.version ?? '' } : undefined;
