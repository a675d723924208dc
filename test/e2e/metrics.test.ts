import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { connectHttp, startHarness, waitFor, writeStdioGatewayConfig, type Harness } from '../helpers/gateway-harness.ts';
import { GATEHOUSE_BIN } from '../helpers/cli.ts';
import { baseOf, connectWithKey, heldWrite, pendingApproval, resultText } from '../helpers/approvers.ts';

const harnesses: Harness[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

/** echo runs, crash is denied, write waits for a human. */
function policyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-metrics-policy-'));
  writeFileSync(
    join(dir, 'policy.yaml'),
    'version: 2\ndefault: allow\nrules:\n  - { id: no-crash, match: { tools: [fx__crash] }, effect: deny, reason: not crash }\n  - { id: w, match: { tools: [fx__write] }, effect: require_approval }\n',
  );
  return dir;
}

async function harness(overrides = {}): Promise<Harness> {
  const h = await startHarness({ policies: [policyDir()], ...overrides });
  harnesses.push(h);
  return h;
}

async function scrape(h: Harness, key?: string): Promise<{ status: number; text: string; type: string | null }> {
  const response = await fetch(`${baseOf(h)}/metrics`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: response.status, text: await response.text(), type: response.headers.get('content-type') };
}

/** The samples of one metric as `{labels} value` lines, sorted, without the HELP and TYPE lines. */
function samples(text: string, name: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .sort();
}

describe('GET /metrics', () => {
  it('counts a known mix of calls by decision, upstream, tool and outcome, and times them', async () => {
    const h = await harness();
    const client = await connectHttp(h.url);
    clients.push(client);
    for (const text of ['a', 'b', 'c']) expect(resultText((await client.callTool({ name: 'fx__echo', arguments: { text } })) as never)).toBe(`echo: ${text}`);
    const denied = (await client.callTool({ name: 'fx__crash', arguments: {} })) as { isError?: boolean };
    expect(denied.isError).toBe(true);
    const held = heldWrite(client);
    const approval = await pendingApproval(h);
    const whilePending = await scrape(h);
    expect(samples(whilePending.text, 'gatehouse_approvals_pending')).toEqual(['gatehouse_approvals_pending 1']);
    await h.gateway.approvals.approve(approval.id, 'tester', 'fine');
    expect(resultText(await held)).toBe('wrote k');

    const { status, text, type } = await scrape(h);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(samples(text, 'gatehouse_calls_total')).toEqual([
      'gatehouse_calls_total{decision="allow",upstream="fx",tool="echo",outcome="ok"} 3',
      'gatehouse_calls_total{decision="deny",upstream="fx",tool="crash",outcome="refused"} 1',
      'gatehouse_calls_total{decision="require_approval",upstream="fx",tool="write",outcome="ok"} 1',
    ]);
    expect(samples(text, 'gatehouse_approvals_pending')).toEqual(['gatehouse_approvals_pending 0']);
    expect(samples(text, 'gatehouse_approval_wait_seconds_count')).toEqual(['gatehouse_approval_wait_seconds_count 1']);
    expect(samples(text, 'gatehouse_kernel_decision_duration_seconds_count')).toEqual(['gatehouse_kernel_decision_duration_seconds_count 5']);
    // Every call has Gatehouse's own share; the four that reached the upstream, the upstream's too.
    expect(samples(text, 'gatehouse_call_duration_seconds_count')).toEqual([
      'gatehouse_call_duration_seconds_count{part="gatehouse",upstream="fx"} 5',
      'gatehouse_call_duration_seconds_count{part="upstream",upstream="fx"} 4',
    ]);
    expect(samples(text, 'mcp_server_operation_duration_seconds_count').filter((l) => l.includes('tools/call'))).toEqual([
      'mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",error_type=""} 4',
      'mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",error_type="tool_error"} 1',
    ]);
    expect(samples(text, 'mcp_server_operation_duration_seconds_count').some((l) => l.includes('mcp_method_name="initialize"'))).toBe(true);
    expect(samples(text, 'gatehouse_upstream_up')).toEqual(['gatehouse_upstream_up{upstream="fx"} 1']);
    expect(samples(text, 'gatehouse_upstream_restarts_total')).toEqual(['gatehouse_upstream_restarts_total{upstream="fx"} 0']);
    // The last call's closing records may still be on their way to the chain.
    expect(samples(text, 'gatehouse_audit_backlog_events')).toEqual([expect.stringMatching(/^gatehouse_audit_backlog_events \d+$/)]);
    const appended = Number(samples(text, 'gatehouse_audit_appended_events_total')[0]?.split(' ')[1]);
    expect(appended).toBeGreaterThanOrEqual(5); // at least each call's decision
    expect(text).toContain('process_cpu_seconds_total');
  });

  it('caps the distinct tool names: past the cap a tool counts as _other', async () => {
    const h = await harness({ metrics: { enabled: true, maxTools: 1 } });
    const client = await connectHttp(h.url);
    clients.push(client);
    await client.callTool({ name: 'fx__echo', arguments: { text: 'a' } });
    await client.callTool({ name: 'fx__crash', arguments: {} });
    await client.callTool({ name: 'fx__echo', arguments: { text: 'b' } });
    expect(samples((await scrape(h)).text, 'gatehouse_calls_total')).toEqual([
      'gatehouse_calls_total{decision="allow",upstream="fx",tool="echo",outcome="ok"} 2',
      'gatehouse_calls_total{decision="deny",upstream="fx",tool="_other",outcome="refused"} 1',
    ]);
  });

  it('with API keys: 401 without a key, 403 for a key without the role, 200 for the metrics and admin roles and the metrics token', async () => {
    const keys = { caller: 'caller-key-agent-0123456789', reader: 'metrics-key-prom-0123456789', admin: 'admin-key-root-01234567890' };
    const token = 'metrics-token-0123456789abcdef';
    const h = await harness({
      auth: {
        apiKeys: [
          { key: keys.caller, principal: 'agent', tenant: 'default', roles: [] },
          { key: keys.reader, principal: 'prom', tenant: 'default', roles: ['metrics'] },
          { key: keys.admin, principal: 'root', tenant: 'default', roles: ['admin'] },
        ],
      },
      metrics: { enabled: true, maxTools: 200, token },
    });
    const client = await connectWithKey(h.url, keys.caller);
    clients.push(client);
    await client.callTool({ name: 'fx__echo', arguments: { text: 'a' } });

    expect((await scrape(h)).status).toBe(401);
    expect((await scrape(h, 'not-a-key-of-this-server-000')).status).toBe(401);
    const noRole = await scrape(h, keys.caller);
    expect(noRole.status).toBe(403);
    expect(JSON.parse(noRole.text).error.code).toBe('GH_ERR_FORBIDDEN');
    for (const key of [keys.reader, keys.admin, token]) {
      const ok = await scrape(h, key);
      expect(ok.status).toBe(200);
      expect(samples(ok.text, 'gatehouse_calls_total')).toEqual(['gatehouse_calls_total{decision="allow",upstream="fx",tool="echo",outcome="ok"} 1']);
    }
    // The token reads metrics only: it is no API key for /mcp.
    await expect(connectWithKey(h.url, token)).rejects.toThrow();
  });

  it('without keys but with a token, the token is required even on loopback', async () => {
    const token = 'metrics-token-0123456789abcdef';
    const h = await harness({ metrics: { enabled: true, maxTools: 200, token } });
    expect((await scrape(h)).status).toBe(401);
    expect((await scrape(h, token)).status).toBe(200);
  });

  it('a client on stdio with listen.http beside it: its calls are counted on the HTTP listener’s /metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-metrics-stdio-'));
    const config = writeStdioGatewayConfig(dir);
    writeFileSync(config, readFileSync(config, 'utf8').replace('listen: { http: false, stdio: true }', 'listen: { http: "127.0.0.1:0", stdio: true }'));
    const transport = new StdioClientTransport({ command: process.execPath, args: [GATEHOUSE_BIN, 'start', '--config', config], cwd: dir, stderr: 'pipe' });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const client = new Client({ name: 'stdio-metrics', version: '1' });
    await client.connect(transport);
    clients.push(client);
    await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__echo'), 'the fixture’s tools');
    await client.callTool({ name: 'fx__echo', arguments: { text: 'over stdio' } });
    await waitFor(() => /MCP endpoint \(Streamable HTTP\): (\S+)/.test(stderr), 'the banner on stderr');
    const mcp = /MCP endpoint \(Streamable HTTP\): (\S+)/.exec(stderr)![1];
    const text = await (await fetch(new URL('/metrics', mcp))).text();
    expect(samples(text, 'gatehouse_calls_total')).toEqual(['gatehouse_calls_total{decision="allow",upstream="fx",tool="echo",outcome="ok"} 1']);
  });

  it('metrics.enabled: false serves no /metrics', async () => {
    const h = await harness({ metrics: { enabled: false, maxTools: 200 } });
    expect((await scrape(h)).status).toBe(404);
  });
});
