// Constraints that bite, end to end: a real gateway over HTTP, the real stdio fixture upstream, a version 2
// policy. Each test tries to get around one constraint; the fixture logs every call that really reached it.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, startConstraintHarness, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { startConformanceServer } from '../fixtures/conformance-server.ts';
import { HttpUpstream } from '../../adapters/mcp/http-upstream.ts';
import { silentLogger } from '../../src/log.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

const POLICY = `
version: 2
default: allow
rules:
  - id: ws
    match: { tools: ["fx__access"] }
    effect: allow_with_constraints
    constraints:
      paths: { args: [path, paths], allow: ["/tmp/ws/**"], deny: ["**/.ssh/**"] }
      egress: { args: [url], allowHosts: ["api.example.com", "*.example.org"] }
      redact: { args: [password, "auth.token", "/sk-[A-Za-z0-9]{20,}/"], result: ["secret", "/AKIA[0-9A-Z]{16}/"] }
      maxArgBytes: 1024
  - id: quota
    match: { tools: ["fx__meta"] }
    effect: allow_with_constraints
    constraints:
      maxCallsPerSession: 3
  - id: rl
    match: { tools: ["fx__echo"] }
    effect: throttle
    throttle: { limit: 2, window: 1m, per: principal }
  - id: frozen
    match: { tools: ["fx__write"] }
    effect: deny
    reason: writes are frozen
    remediation: Ask an operator to lift the freeze, or use a read-only tool.
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

/** How many calls really reached the fixture's `access` tool. */
const reached = () => (existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').filter((l) => l === 'access').length : 0);
type Result = Awaited<ReturnType<Client['callTool']>>;
const access = (args: Record<string, unknown>) => client.callTool({ name: 'fx__access', arguments: args });
const errorOf = (r: Result) => (r._meta as Record<string, any> | undefined)?.['gatehouse/error'];
const textOf = (r: Result) => (r.content as { text: string }[])[0].text;

async function expectRefused(args: Record<string, unknown>, code: string, argument?: string): Promise<Result> {
  const before = reached();
  const result = await access(args);
  expect(result.isError, JSON.stringify(result)).toBe(true);
  expect(errorOf(result)).toMatchObject({ code, ruleId: 'ws', ...(argument ? { argument } : {}) });
  expect(textOf(result)).toContain(code);
  if (argument) expect(textOf(result)).toContain(argument);
  expect(reached()).toBe(before); // the upstream never saw it
  return result;
}

async function auditRecords(): Promise<AuditRecord[]> {
  await h.gateway.audit.flush();
  return readFileSync(join(h.dataDir, 'audit', 'default.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
}

describe('paths', () => {
  it('admits a path inside the workspace', async () => {
    const before = reached();
    const result = await access({ path: '/tmp/ws/notes.txt', paths: ['/tmp/ws/a', '/tmp/ws/b/c'] });
    expect(result.isError).toBeFalsy();
    expect(reached()).toBe(before + 1);
  });

  it.each([
    ['outside the workspace', { path: '/etc/passwd' }, 'path'],
    ['.. out of the workspace', { path: '/tmp/ws/../../etc/passwd' }, 'path'],
    ['backslashes', { path: '/tmp/ws\\..\\..\\etc\\passwd' }, 'path'],
    ['percent-encoded ..', { path: '/tmp/ws/%2e%2e/%2e%2e/etc/passwd' }, 'path'],
    ['double-encoded ..', { path: '/tmp/ws/%252e%252e/x' }, 'path'],
    ['a NUL byte', { path: '/tmp/ws/a.txt\u0000../../etc/passwd' }, 'path'],
    ['a relative path', { path: '../etc/passwd' }, 'path'],
    ['a denied dir inside the workspace', { path: '/tmp/ws/home/.ssh/id_rsa' }, 'path'],
    ['mixed case of a denied dir', { path: '/tmp/ws/.SsH/id_rsa' }, 'path'],
    ['backslashes that are one name in / on POSIX', { path: '/etc\\..\\tmp\\ws\\x' }, 'path'],
    ['`.. ` segments (.. to Windows)', { path: '/tmp/ws/.. /.. /etc/passwd' }, 'path'],
    ['overlong UTF-8 dots', { path: '/tmp/ws/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd' }, 'path'],
    ['a relative path into a denied dir', { path: '.ssh/id_rsa' }, 'path'],
    ['one bad element of an array', { paths: ['/tmp/ws/a', '/root/.bashrc'] }, 'paths.1'],
  ])('refuses %s', async (_, args, argument) => {
    await expectRefused(args, 'GH_ERR_PATH_DENIED', argument);
  });
});

describe('egress', () => {
  it('admits the allowed hosts', async () => {
    for (const url of ['https://api.example.com/v1', 'HTTP://API.EXAMPLE.COM./', 'https://eu.example.org/x']) {
      expect((await access({ url })).isError, url).toBeFalsy();
    }
  });

  it.each([
    'http://2130706433/',
    'http://0x7f.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://api.example.com@evil.com/',
    'http://evil.com#@api.example.com',
    'https://example.org/',
    'https://api.example.com.evil.com/',
    'file:///etc/passwd',
    'gopher://api.example.com:70/_x',
    'http:\\\\evil.com/x',
    'https:evil.com',
    'ws://[::ffff:7f00:1]/',
  ])('refuses %s', async (url) => {
    await expectRefused({ url }, 'GH_ERR_EGRESS_DENIED', 'url');
  });
});

describe('argument size', () => {
  it('refuses arguments over maxArgBytes', async () => {
    const before = reached();
    const result = await access({ path: '/tmp/ws/a', note: 'x'.repeat(2_000) });
    expect(errorOf(result)).toMatchObject({ code: 'GH_ERR_ARGS_TOO_LARGE' });
    expect(reached()).toBe(before);
  });
});

describe('redaction', () => {
  it('redacts the result before it leaves, and records the arguments redacted (audit.recordArguments: redacted, the default) while the upstream gets them whole', async () => {
    const args = { path: '/tmp/ws/r', password: 'hunter2-pw', auth: { token: 'tok-123456' }, note: 'key sk-ABCDEFGHIJKLMNOPQRSTUVWX1234 inside' };
    const result = await access(args);
    expect(result.isError).toBeFalsy();
    const all = JSON.stringify(result);
    expect(all).not.toContain('vault-secret-value');
    expect(all).not.toContain('AKIAABCDEFGHIJKLMNOP');
    const structured = result.structuredContent as Record<string, any>;
    expect(structured.secret).toBe('[REDACTED]');
    expect(structured.awsKey).toBe('[REDACTED]');
    // What the upstream received, echoed back: the arguments as sent (result rules do not name them).
    expect(structured.received).toEqual(args);
    expect(JSON.parse(textOf(result)).secret).toBe('[REDACTED]');

    const records = await auditRecords();
    const text = records.map((r) => JSON.stringify(r)).join('\n');
    for (const secret of ['hunter2-pw', 'tok-123456', 'sk-ABCDEFGHIJKLMNOPQRSTUVWX1234', 'vault-secret-value', 'AKIAABCDEFGHIJKLMNOP']) expect(text).not.toContain(secret);
    const decided = records.filter((r) => r.type === 'job.decided' && (r.data.input as any)?.args?.path === '/tmp/ws/r');
    expect(decided).toHaveLength(1);
    // What the redacted mode promises: the rule's pattern cut out of `note`, `password` masked (by the rule and as a
    // secret-looking key), `auth` masked whole (a secret-looking key: the rule's `auth.token` lies inside it), the
    // rest as the upstream got it.
    expect(decided[0].data.input).toMatchObject({
      tenant: 'default',
      principal: 'tester',
      server: 'fx',
      tool: 'fx__access',
      args: { path: '/tmp/ws/r', password: '[REDACTED]', auth: '[REDACTED]', note: 'key [REDACTED] inside' },
      now: expect.any(Number),
    });
  });
});

describe('session quota', () => {
  it('refuses the fourth matching call of a session, and a new session starts afresh', async () => {
    const session = await connectHttp(h.url);
    for (let i = 0; i < 3; i++) expect((await session.callTool({ name: 'fx__meta', arguments: {} })).isError).toBeFalsy();
    const over = await session.callTool({ name: 'fx__meta', arguments: {} });
    expect(errorOf(over)).toMatchObject({ code: 'GH_ERR_SESSION_QUOTA', ruleId: 'quota' });
    await session.close();
    const fresh = await connectHttp(h.url);
    expect((await fresh.callTool({ name: 'fx__meta', arguments: {} })).isError).toBeFalsy();
    await fresh.close();
  });
});

describe('throttle', () => {
  it('refuses past the limit with a retry-after, audited', async () => {
    for (let i = 0; i < 2; i++) expect((await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } })).isError).toBeFalsy();
    const throttled = await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    expect(throttled.isError).toBe(true);
    const error = errorOf(throttled);
    expect(error).toMatchObject({ code: 'GH_ERR_THROTTLED', ruleId: 'rl' });
    expect(error.retryAfterMs).toBeGreaterThan(0);
    expect(error.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(textOf(throttled)).toContain(`retryAfterMs: ${error.retryAfterMs}`);
    const denied = (await auditRecords()).filter((r) => r.type === 'job.denied' && r.data.errorCode === 'GH_ERR_THROTTLED');
    expect(denied).toHaveLength(1);
  });
});

describe('denials', () => {
  it('show the remediation and keep the code', async () => {
    const result = await client.callTool({ name: 'fx__write', arguments: { key: 'k', value: 'v' } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/^Denied by policy: writes are frozen\. Ask an operator to lift the freeze, or use a read-only tool\./);
    expect(errorOf(result)).toMatchObject({ code: 'GH_ERR_POLICY_DENIED', remediation: expect.stringContaining('lift the freeze') });
  });
});

describe('the kernel failing', () => {
  it('denies (fail closed) and audits why', async () => {
    const kernel = h.gateway.kernel;
    const decide = kernel.decide;
    kernel.decide = () => {
      throw new Error('kernel exploded');
    };
    try {
      const result = await access({ path: '/tmp/ws/a' });
      expect(errorOf(result)).toMatchObject({ code: 'GH_ERR_KERNEL_UNAVAILABLE' });
    } finally {
      kernel.decide = decide;
    }
    const denied = (await auditRecords()).filter((r) => r.type === 'job.denied' && r.data.errorCode === 'GH_ERR_KERNEL_UNAVAILABLE');
    expect(denied[0].data.reason).toContain('kernel exploded');
  });
});

describe('HTTP upstreams', () => {
  it('refuse every call when the upstream itself is not an allowed egress host', async () => {
    const conformance = await startConformanceServer(0);
    const dir = mkdtempSync(join(tmpdir(), 'gh-egress-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'version: 2\ndefault: allow\nrules:\n  - id: only-api\n    match: { servers: ["conf"] }\n    effect: allow_with_constraints\n    constraints: { egress: { allowHosts: ["api.example.com"] } }\n');
    const gw = await startHarness({ policies: [policy], upstreams: { conf: { url: conformance.url, headers: {}, timeout: 10_000 } } as never });
    try {
      const c = await connectHttp(gw.url);
      const result = await c.callTool({ name: 'conf__test_simple_text', arguments: {} });
      expect(errorOf(result)).toMatchObject({ code: 'GH_ERR_EGRESS_DENIED', ruleId: 'only-api' });
      expect(textOf(result)).toContain('127.0.0.1');
      await c.close();
    } finally {
      await gw.close();
      await conformance.close();
    }
  });

  it('never follow redirects', async () => {
    let targetHits = 0;
    const target = await listen(createServer((_, res) => void (targetHits++, res.end('{}'))));
    const redirector = await listen(createServer((_, res) => void res.writeHead(307, { location: `${target.url}/mcp` }).end()));
    const upstream = new HttpUpstream('redirecting', { url: `${redirector.url}/mcp`, headers: { authorization: 'Bearer upstream-secret' } }, silentLogger);
    try {
      await upstream.start({});
      expect(upstream.state).not.toBe('ready');
      expect(targetHits).toBe(0);
    } finally {
      await upstream.close();
      redirector.server.close();
      target.server.close();
    }
  });
});

async function listen(server: Server): Promise<{ server: Server; url: string }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${address.port}` };
}
