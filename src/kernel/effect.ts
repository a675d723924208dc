/** Policy effects, strictest first. Every matching rule counts and the strictest effect wins. */
export const EFFECTS = ['deny', 'require_approval', 'throttle', 'allow_with_constraints', 'allow'] as const;
export type Effect = (typeof EFFECTS)[number];

/** How strict each effect is: deny 4 … allow 0. */
export const RANK: Readonly<Record<Effect, number>> = { deny: 4, require_approval: 3, throttle: 2, allow_with_constraints: 1, allow: 0 };

export const stricterEffect = (a: Effect, b: Effect): Effect => (RANK[a] >= RANK[b] ? a : b);
