/**
 * The policy of the session-aware rules' end-to-end tests (embedded and distributed): each rule on a tool of the
 * fixture upstream, so each test reaches one of them; `spread` and `counted` only for clients of those names.
 */
export const SESSION_POLICY = `
version: 2
default: allow
rules:
  - id: loop
    match: { tools: ["fx__echo"] }
    effect: allow
    repeat: { limit: 3, window: 10m }
  - id: meta-calls
    match: { tools: ["fx__meta"] }
    effect: allow
    budget: { calls: 5 }
  - id: big-bytes
    match: { tools: ["fx__big"] }
    effect: allow
    budget: { outputBytes: 1000 }
  - id: slow-time
    match: { tools: ["fx__slow"] }
    effect: allow
    budget: { upstreamTime: 1ms }
  - id: daily-writes
    match: { tools: ["fx__write"] }
    effect: allow
    budget: { calls: 2, per: principal }
  - id: spread
    match: { tools: ["fx__echo", "fx__big", "fx__meta"] }
    when: 'session.client.name == "spreader"'
    effect: allow
    budget: { distinctTools: 2 }
  - id: counted
    match: { tools: ["fx__echo"] }
    when: 'session.client.name == "counter" && session.calls >= 3'
    effect: deny
    reason: this session has made its calls
`;
