// The one verdict function: the kernel's decision plus the constraint checks on the arguments, as the live path,
// explain, test and replay all apply them.
import { describe, expect, it } from 'vitest';
import { verdictOf } from '../../src/kernel/verdict.ts';
import type { Decision, DecisionInput } from '../../src/kernel/decision.ts';
import type { Constraints } from '../../src/protocol/constraints.ts';

const input = (args: Record<string, unknown> | undefined, extra: Partial<DecisionInput> = {}): DecisionInput => ({ tenant: 't', principal: 'p', server: 'fs', tool: 'fs__write', annotations: undefined, args, ...extra });
const decision = (effect: Decision['effect'], constraints: Constraints = {}): Decision => ({ effect, reason: 'r', ruleIds: ['a'], policySnapshot: 'sha256:x', constraints });
const ws: Constraints = { paths: [{ ruleId: 'ws', allow: ['/ws/**'], deny: ['**/.ssh/**'] }], egress: [{ ruleId: 'net', args: ['url'], allowHosts: ['api.example.com'] }], maxArgBytes: 200 };

describe('verdictOf', () => {
  it('passes a call its constraints admit, keeping the decision as it is', () => {
    const d = decision('require_approval', ws);
    expect(verdictOf(input({ path: '/ws/a', url: 'https://api.example.com/x' }), d)).toEqual({ decision: d, effect: 'require_approval' });
  });

  it.each([
    ['a path outside', { path: '/etc/passwd' }, { code: 'GH_ERR_PATH_DENIED', ruleId: 'ws', argument: 'path' }],
    ['a denied glob', { files: ['/ws/a', '/ws/.ssh/id'] }, { code: 'GH_ERR_PATH_DENIED', ruleId: 'ws', argument: 'files.1' }],
    ['a URL outside', { url: 'https://evil.example.net/' }, { code: 'GH_ERR_EGRESS_DENIED', ruleId: 'net', argument: 'url' }],
    ['too many bytes', { path: '/ws/a', note: 'x'.repeat(300) }, { code: 'GH_ERR_ARGS_TOO_LARGE' }],
  ])('denies %s whatever the effect, with the constraint and argument', (_, args, refusal) => {
    for (const effect of ['allow', 'allow_with_constraints', 'throttle', 'require_approval'] as const) {
      const verdict = verdictOf(input(args), decision(effect, ws));
      expect(verdict).toMatchObject({ effect: 'deny', code: refusal.code, refusal, decision: { effect } });
      expect(verdict.refusal?.message).toBeTruthy();
    }
  });

  it("checks an HTTP upstream's own URL against egress", () => {
    const egress: Constraints = { egress: [{ ruleId: 'net', allowHosts: ['api.example.com'] }] };
    expect(verdictOf(input({}, { upstreamUrl: 'https://mcp.internal:8443' }), decision('allow', egress))).toMatchObject({ effect: 'deny', refusal: { code: 'GH_ERR_EGRESS_DENIED', ruleId: 'net' } });
    expect(verdictOf(input({}, { upstreamUrl: 'https://api.example.com' }), decision('allow', egress)).refusal).toBeUndefined();
  });

  it('refuses arguments too deep to check (fail closed)', () => {
    let deep: Record<string, unknown> = { path: '/ws/a' };
    for (let i = 0; i < 150; i++) deep = { deeper: deep };
    expect(verdictOf(input(deep), decision('allow', { paths: ws.paths })).refusal).toMatchObject({ code: 'GH_ERR_INVALID_ARGUMENTS' });
  });

  it('names the policy for a decision that denies, without checking anything', () => {
    expect(verdictOf(input({ path: '/etc/passwd' }), decision('deny', ws))).toMatchObject({ effect: 'deny', code: 'GH_ERR_POLICY_DENIED' });
  });

  it('never reads the arguments when no constraint is on them (the hot path), nor when listing', () => {
    const untouchable = new Proxy({}, { get: () => expect.unreachable('read an argument'), ownKeys: () => expect.unreachable('listed the arguments') });
    expect(verdictOf(input(untouchable), decision('allow', { timeoutMs: 1_000, maxOutputBytes: 10, redact: { args: ['x'], result: [] } })).effect).toBe('allow');
    expect(verdictOf(input(undefined), decision('allow', ws)).refusal).toBeUndefined();
  });
});
