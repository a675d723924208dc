import type { Decision } from './decision.ts';

type ConditionErrors = NonNullable<Decision['errors']>;

/** Decisions with errors kept per plan: an error's text may vary with the call, and must not crowd out the others. */
const MAX_FAILED = 4;

/**
 * A plan's decisions by the set of its rules that matched (see `ToolPlan.decisions`), and for a call where a
 * condition threw, by that set and the errors: those say which rules threw (a deny's error matches it, an allow's
 * restrictions still apply), so the same set and errors make the same decision. Kept decisions are frozen and handed
 * to every caller as they are. The first is kept in the memo itself, read without a Map: with thousands of plans,
 * each decision's lookup would otherwise read a cold Map.
 */
export class DecisionMemo {
  #firstKey = 0;
  #first: Decision | undefined;
  #more: Map<number, Decision> | undefined;
  /** Decisions with condition errors, and their keys at the same positions: few, so a list is searched. */
  #failed: Decision[] | undefined;
  #failedKeys: number[] | undefined;

  get size(): number {
    return (this.#first === undefined ? 0 : 1) + (this.#more?.size ?? 0) + (this.#failed?.length ?? 0);
  }

  get(key: number, errors: ConditionErrors | undefined): Decision | undefined {
    if (errors !== undefined) return this.#failedWith(key, errors);
    if (this.#firstKey === key && this.#first !== undefined) return this.#first;
    return this.#more?.get(key);
  }

  set(key: number, decision: Decision): void {
    if (decision.errors !== undefined) {
      if ((this.#failed?.length ?? 0) >= MAX_FAILED) return;
      (this.#failed ??= []).push(decision);
      (this.#failedKeys ??= []).push(key);
    } else if (this.#first === undefined) {
      this.#firstKey = key;
      this.#first = decision;
    } else if (this.#firstKey !== key) {
      (this.#more ??= new Map()).set(key, decision);
    }
  }

  #failedWith(key: number, errors: ConditionErrors): Decision | undefined {
    const failed = this.#failed;
    if (failed === undefined) return undefined;
    const keys = this.#failedKeys!;
    for (let i = 0; i < failed.length; i++) if (keys[i] === key && sameErrors(failed[i].errors!, errors)) return failed[i];
    return undefined;
  }
}

function sameErrors(a: ConditionErrors, b: ConditionErrors): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].ruleId !== b[i].ruleId || a[i].error !== b[i].error) return false;
  return true;
}
