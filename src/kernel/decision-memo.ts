import type { Decision } from './decision.ts';

/**
 * A plan's decisions by the set of its rules that matched (see `ToolPlan.decisions`). The first one is kept in the
 * memo itself, read without a Map: with thousands of plans, each decision's lookup would otherwise read a cold Map.
 */
export class DecisionMemo {
  #firstKey = 0;
  #first: Decision | undefined;
  #more: Map<number, Decision> | undefined;

  get size(): number {
    return this.#first === undefined ? 0 : 1 + (this.#more?.size ?? 0);
  }

  get(key: number): Decision | undefined {
    if (this.#firstKey === key && this.#first !== undefined) return this.#first;
    return this.#more?.get(key);
  }

  set(key: number, decision: Decision): void {
    if (this.#first === undefined) {
      this.#firstKey = key;
      this.#first = decision;
    } else if (this.#firstKey !== key) {
      (this.#more ??= new Map()).set(key, decision);
    }
  }
}
