// Everything that can be checked before asking a human is checked before an approval is created: a call that
// could never run (its arguments break a path, egress or size constraint, an HTTP upstream outside the egress
// list, a throttle or session quota already used up) is refused at once with the constraint's code, audited as
// denied with that code, and nobody is asked. A real gateway over HTTP, the official SDK client, the real stdio
// fixture upstream (which logs every call that reaches it).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, startConstraintHarness, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import { startConformanceServer } from '../fixtures/conformance-server.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

// Each tool is gated by one require_approval rule and bounded by one other rule: the call is held for a human
// only when it could run once approved.
const POLICY = `
version: 2
default: allow
rules:
  - { id: access-asks, match: { tools: ["fx__access"] }, effect: require_approval, reason: a human checks each access }
  - id: ws
    match: { tools: ["fx__access"] }
    effect: allow_with_constraints
    constraints:
      paths: { args: [path, paths], allow: ["/tmp/ws/**"], deny: ["**/.ssh/**"] }
      egress: { args: [url], allowHosts: ["api.example.com"] }
      maxArgBytes: 1024
  - { id: echo-asks, match: { tools: ["fx__echo"] }, effect: require_approval }
  - { id: echo-quota, match: { tools: ["fx__echo"] }, effect: allow_with_constraints, constraints: { maxCallsPerSession: 1 } }
  - { id: big-asks, match: { tools: ["fx__big"] }, effect: require_approval }
  - { id: big-rate, match: { tools: ["fx__big"] }, effect: throttle, throttle: { limit: 1, window: 3650d, per: principal } }
`;

let h: Harness;
let client: Client;
let calls: string;

beforeAll(async () => {
  ({ h, client, calls } = await startConstraintHarness(POLICY));
});
afterAll(async () => {
  await client?.close();
  await h?.close();
});

type Result = Awaited<ReturnType<Client['callTool']>>;
const errorOf = (r: Result) => (r._meta as Record<string, any> | undefined)?.['gatehouse/error'];
const jobOf = (r: Result) => (r._meta as Record<string, any> | undefined)?.['gatehouse/job'];
/** How many calls of the fixture's `access` tool really reached it. */
const reached = () => (existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').filter((l) => l === 'access').length : 0);

async function auditRecords(): Promise<AuditRecord[]> {
  await h.gateway.audit.flush();
  return readFileSync(join(h.dataDir, 'audit', 'default.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
}

/** The approvals created for calls of `tool` (whatever their state). */
const approvalsFor = async (tool: string) => (await h.gateway.approvals.list()).filter((a) => a.tool === tool);

describe('argument constraints under a require_approval rule', () => {
  it('still asks a human for a call that could run once approved', async () => {
    const result = await client.callTool({ name: 'fx__access', arguments: { path: '/tmp/ws/notes.txt' } });
    expect(errorOf(result)).toMatchObject({ code: 'GH_ERR_APPROVAL_PENDING' });
    expect(await approvalsFor('fx__access')).toHaveLength(1);
  });

  it.each([
    ['a write outside the allowed paths', { path: '/etc/passwd' }, 'GH_ERR_PATH_DENIED', 'path'],
    ['a write to a denied glob inside them', { path: '/tmp/ws/home/.ssh/authorized_keys' }, 'GH_ERR_PATH_DENIED', 'path'],
    ['one bad path of several', { paths: ['/tmp/ws/a', '/root/.bashrc'] }, 'GH_ERR_PATH_DENIED', 'paths.1'],
    ['a URL outside the egress list', { url: 'https://evil.example.net/upload' }, 'GH_ERR_EGRESS_DENIED', 'url'],
    ['arguments over maxArgBytes', { path: '/tmp/ws/a', note: 'x'.repeat(2_000) }, 'GH_ERR_ARGS_TOO_LARGE', undefined],
  ])('refuses %s at once, creating no approval', async (_, args, code, argument) => {
    const before = (await approvalsFor('fx__access')).length;
    const result = await client.callTool({ name: 'fx__access', arguments: args });
    expect(result.isError).toBe(true);
    expect(errorOf(result)).toMatchObject({ code, ...(argument ? { ruleId: 'ws', argument } : {}) });
    // The kernel's decision is reported as it was; the constraint refused the call before anyone was asked.
    expect(jobOf(result)).toMatchObject({ decision: 'require_approval', ruleIds: ['access-asks', 'ws'] });
    expect(jobOf(result).approvalId).toBeUndefined();
    expect(await approvalsFor('fx__access')).toHaveLength(before);
    expect(reached()).toBe(0);
    const jobId = jobOf(result).jobId as string;
    const records = (await auditRecords()).filter((r) => r.jobId === jobId);
    expect(records.find((r) => r.type === 'job.decided')?.data).toMatchObject({ effect: 'require_approval', refusal: { code } });
    expect(records.find((r) => r.type === 'job.denied')?.data).toMatchObject({ errorCode: code });
    expect(records.some((r) => r.type.startsWith('approval.'))).toBe(false);
  });

  it('leaves `gatehouse approvals list` with only the call that could run', async () => {
    const listed = await gatehouse(['approvals', 'list', '--all', '--json', '--data-dir', h.dataDir]);
    expect(listed.code).toBe(0);
    const approvals = JSON.parse(listed.stdout) as { tool: string }[];
    expect(approvals.filter((a) => a.tool === 'fx__access')).toHaveLength(1);
  });
});

describe('limits under a require_approval rule', () => {
  it('holds calls without using up a session quota, and refuses at once once it is used up', async () => {
    const session = await connectHttp(h.url);
    try {
      const echo = (text: string) => session.callTool({ name: 'fx__echo', arguments: { text } });
      // Two calls held for a human: neither counts against the quota of one.
      const heldA = await echo('a');
      const heldB = await echo('b');
      expect(errorOf(heldA)).toMatchObject({ code: 'GH_ERR_APPROVAL_PENDING' });
      expect(errorOf(heldB)).toMatchObject({ code: 'GH_ERR_APPROVAL_PENDING' });
      const a = jobOf(heldA).approvalId as string;
      const b = jobOf(heldB).approvalId as string;
      await h.gateway.approvals.approve(a, 'ops');
      await h.gateway.approvals.approve(b, 'ops');
      // The first approved call runs and takes the session's one call.
      const ran = await echo('a');
      expect(ran.isError).toBeFalsy();
      // A new call could never run in this session: refused at once, nobody asked.
      const before = (await approvalsFor('fx__echo')).length;
      const refused = await echo('c');
      expect(errorOf(refused)).toMatchObject({ code: 'GH_ERR_SESSION_QUOTA', ruleId: 'echo-quota' });
      expect(await approvalsFor('fx__echo')).toHaveLength(before);
      // The other approved call is refused too, and its approval is not used up by the refusal.
      expect(errorOf(await echo('b'))).toMatchObject({ code: 'GH_ERR_SESSION_QUOTA' });
      expect((await h.gateway.approvals.get(b))?.state).toBe('approved');
    } finally {
      await session.close();
    }
  });

  it('refuses at once a call its throttle would refuse, creating no approval', async () => {
    const held = await client.callTool({ name: 'fx__big', arguments: { bytes: 1 } });
    expect(errorOf(held)).toMatchObject({ code: 'GH_ERR_APPROVAL_PENDING' });
    await h.gateway.approvals.approve(jobOf(held).approvalId, 'ops');
    expect((await client.callTool({ name: 'fx__big', arguments: { bytes: 1 } })).isError).toBeFalsy();
    const refused = await client.callTool({ name: 'fx__big', arguments: { bytes: 2 } });
    expect(errorOf(refused)).toMatchObject({ code: 'GH_ERR_THROTTLED', ruleId: 'big-rate' });
    expect(errorOf(refused).retryAfterMs).toBeGreaterThan(0);
    expect(await approvalsFor('fx__big')).toHaveLength(1);
    const denied = (await auditRecords()).filter((r) => r.jobId === jobOf(refused).jobId && r.type === 'job.denied');
    expect(denied[0]?.data).toMatchObject({ errorCode: 'GH_ERR_THROTTLED' });
  });
});

describe('an HTTP upstream outside the egress list', () => {
  it('is refused at once under a require_approval rule, creating no approval', async () => {
    const conformance = await startConformanceServer(0);
    const dir = mkdtempSync(join(tmpdir(), 'gh-before-approval-egress-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      'version: 2\ndefault: allow\nrules:\n  - { id: conf-asks, match: { servers: ["conf"] }, effect: require_approval }\n  - { id: only-api, match: { servers: ["conf"] }, effect: allow_with_constraints, constraints: { egress: { allowHosts: ["api.example.com"] } } }\n',
    );
    const gw = await startHarness({ policies: [policy], upstreams: { conf: { url: conformance.url, headers: {}, timeout: 10_000 } } as never });
    try {
      const c = await connectHttp(gw.url);
      const result = await c.callTool({ name: 'conf__test_simple_text', arguments: {} });
      expect(errorOf(result)).toMatchObject({ code: 'GH_ERR_EGRESS_DENIED', ruleId: 'only-api' });
      expect(await gw.gateway.approvals.list()).toEqual([]);
      await c.close();
    } finally {
      await gw.close();
      await conformance.close();
    }
  });
});
