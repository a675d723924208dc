// `policy explain` agrees with the live gateway: the demo's notes__write_note (destructiveHint from the upstream,
// nothing stated in the call) explains as require_approval, as it is decided live, through the CLI (asking the
// running gateway, then from the catalog it recorded) and through POST /api/policy/explain. A real gateway in
// front of the real demo server, the official SDK client, the real CLI in another process.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, DEFAULT_POLICY, ROOT, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { api } from '../helpers/approvers.ts';
import { gatehouse } from '../helpers/cli.ts';
import { catalogFile, readRecordedCatalog } from '../../src/kernel/authoring/recorded-catalog.ts';

const DEMO = join(ROOT, 'examples/demo/server.ts');
/** A workspace rule on top of the default policy, so that a path can be refused by a constraint. */
const WORKSPACE = `version: 2
kind: overlay
rules:
  - { id: notes-in-workspace, match: { tools: ["notes__write_note"] }, effect: allow_with_constraints, constraints: { paths: { args: [name], allow: ["/notes/**"] } } }
`;

let h: Harness;
let client: Client;
let config: string;
let stopped = false;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-explain-agrees-'));
  const overlay = join(dir, 'workspace.yaml');
  writeFileSync(overlay, WORKSPACE);
  h = await startHarness({ policies: [DEFAULT_POLICY, overlay], upstreams: { notes: { command: process.execPath, args: ['--import', 'tsx', DEMO], env: {}, cwd: ROOT, timeout: 60_000 } } });
  client = await connectHttp(h.url);
  // The config an operator would run the CLI with: the gateway's policies, data dir and listen address.
  config = join(dir, 'gatehouse.yaml');
  const listen = new URL(h.url).host;
  writeFileSync(config, `listen: { http: "${listen}" }\ndataDir: ${JSON.stringify(h.dataDir)}\npolicies: [${JSON.stringify(DEFAULT_POLICY)}, workspace.yaml]\nupstreams: { notes: { command: "\${NOT_SET_ANYWHERE}" } }\n`);
});
afterAll(async () => {
  await client?.close();
  if (!stopped) await h?.close();
});

type Result = Awaited<ReturnType<Client['callTool']>>;
const errorOf = (r: Result) => (r._meta as Record<string, any> | undefined)?.['gatehouse/error'];
const jobOf = (r: Result) => (r._meta as Record<string, any> | undefined)?.['gatehouse/job'];

async function explain(call: Record<string, unknown>): Promise<{ decision: { effect: string; ruleIds: string[] }; verdict: { effect: string; code?: string; refusal?: { code: string; argument?: string } }; facts: { source: { from: string } } }> {
  const result = await gatehouse(['policy', 'explain', '--config', config, '--json', '--call', JSON.stringify(call)], { cwd: tmpdir() });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

describe('the demo write_note', () => {
  const call = { tool: 'notes__write_note', principal: 'tester', args: { name: '/notes/todo', body: 'milk' } };

  it('is held for approval live', async () => {
    const live = await client.callTool({ name: 'notes__write_note', arguments: call.args });
    expect(errorOf(live)).toMatchObject({ code: 'GH_ERR_APPROVAL_PENDING' });
    expect(jobOf(live)).toMatchObject({ decision: 'require_approval' });
  });

  it('explains as require_approval from the running gateway, with the same rules as live', async () => {
    const live = await client.callTool({ name: 'notes__write_note', arguments: { name: '/notes/other', body: 'x' } });
    const explained = await explain(call);
    expect(explained.facts.source.from).toBe('gateway');
    expect(explained.verdict).toEqual({ effect: 'require_approval' });
    expect(new Set(explained.decision.ruleIds)).toEqual(new Set(jobOf(live).ruleIds));
    const text = await gatehouse(['policy', 'explain', '--config', config, '--call', JSON.stringify(call)], { cwd: tmpdir() });
    expect(text.stdout).toContain(`tool facts from the running gateway at http://${new URL(h.url).host}`);
    expect(text.stdout).toContain('annotations {"destructiveHint":true}');
    expect(text.stdout).toContain('passed: paths (notes-in-workspace)');
    expect(text.stdout).toMatch(/verdict +require_approval/);
  });

  it('explains as require_approval over HTTP, on the live catalog', async () => {
    const explained = await api(h, '/api/policy/explain', { method: 'POST', body: { tool: 'notes__write_note', args: call.args } });
    expect(explained.status).toBe(200);
    expect(explained.body).toMatchObject({ decision: { effect: 'require_approval' }, verdict: { effect: 'require_approval' }, facts: { source: { from: 'catalog' } }, input: { annotations: { destructiveHint: true } } });
  });

  it('explains a path its constraint refuses as refused, as live', async () => {
    const live = await client.callTool({ name: 'notes__write_note', arguments: { name: '/etc/motd', body: 'x' } });
    expect(errorOf(live)).toMatchObject({ code: 'GH_ERR_PATH_DENIED', ruleId: 'notes-in-workspace', argument: 'name' });
    const explained = await explain({ ...call, args: { name: '/etc/motd', body: 'x' } });
    expect(explained.verdict).toMatchObject({ effect: 'deny', code: 'GH_ERR_PATH_DENIED', refusal: { code: 'GH_ERR_PATH_DENIED', argument: 'name' } });
    expect(explained.decision.effect).toBe('require_approval');
  });

  it('lets a call state facts of its own, which win', async () => {
    const explained = await explain({ ...call, annotations: { readOnlyHint: true } });
    expect(explained.verdict.effect).toBe('allow_with_constraints');
  });

  it('explains from the recorded catalog once the gateway is gone, and says so', async () => {
    expect(readRecordedCatalog(h.dataDir)?.tools['notes__write_note']).toMatchObject({ server: 'notes', annotations: { destructiveHint: true } });
    await client.close();
    await h.close();
    stopped = true;
    const explained = await explain(call);
    expect(explained.facts.source.from).toBe('recorded');
    expect(explained.verdict).toEqual({ effect: 'require_approval' });
    const text = await gatehouse(['policy', 'explain', '--config', config, '--call', JSON.stringify(call)], { cwd: tmpdir() });
    expect(text.stdout).toContain(`tool facts from the catalog recorded in ${catalogFile(h.dataDir)}`);
    expect(text.stdout).toContain('no gateway answered');
  });

  it('says when the tool is in neither, and decides on the facts the call states', async () => {
    const text = await gatehouse(['policy', 'explain', '--config', config, '--call', JSON.stringify({ tool: 'notes__burn', annotations: { destructiveHint: true } })], { cwd: tmpdir() });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`notes__burn is not in the catalog recorded in ${catalogFile(h.dataDir)}`);
    expect(text.stdout).toContain('deciding on the facts the call states (annotations)');
    expect(text.stdout).toMatch(/verdict +require_approval/);
  });
});

describe('policy test with the recorded catalog', () => {
  it('decides the cases on the recorded facts, and can expect a constraint refusal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-explain-agrees-test-'));
    writeFileSync(join(dir, 'default.yaml'), (await import('node:fs')).readFileSync(DEFAULT_POLICY, 'utf8'));
    writeFileSync(join(dir, 'workspace.yaml'), WORKSPACE);
    writeFileSync(
      join(dir, 'notes_test.yaml'),
      `cases:
  - name: the demo write waits for a human
    call: { tool: notes__write_note, args: { name: /notes/a, body: b } }
    expect: { effect: require_approval, ruleIds: [destructive-tools-need-approval, everything-else-bounded, notes-in-workspace] }
  - name: a note outside the workspace is refused
    call: { tool: notes__write_note, args: { name: /etc/a, body: b } }
    expect: { effect: deny, code: GH_ERR_PATH_DENIED }
`,
    );
    const withFacts = await gatehouse(['policy', 'test', dir, '--config', config]);
    expect(withFacts.stdout).toContain('2 cases in 1 file: 2 passed, 0 failed');
    expect(withFacts.stdout).toContain(`tool facts from the catalog recorded in ${catalogFile(h.dataDir)}`);
    // The data dir alone will do (what `gatehouse wrap` keeps in ~/.gatehouse).
    const fromDataDir = await gatehouse(['policy', 'test', dir, '--data-dir', h.dataDir, '--json']);
    expect(JSON.parse(fromDataDir.stdout)).toMatchObject({ passed: 2, failed: 0, facts: { from: 'recorded', file: catalogFile(h.dataDir) } });
    // Without the recorded facts the write is not known to be destructive: the first case fails, as it would
    // have before the gateway's facts were used.
    const without = await gatehouse(['policy', 'test', dir]);
    expect(without.code).toBe(1);
    expect(without.stdout).toContain('FAIL the demo write waits for a human');
  });
});

describe('a gateway that requires API keys', () => {
  it('answers the CLI that brings an approver key in GATEHOUSE_API_KEY, and says why when it brings none', async () => {
    const key = 'explain-approver-key-0123456789';
    const keyed = await startHarness({ auth: { apiKeys: [{ key, principal: 'ops', tenant: 'default', roles: ['approver'] }] } as never });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'gh-explain-keyed-'));
      const keyedConfig = join(dir, 'gatehouse.yaml');
      writeFileSync(keyedConfig, `listen: { http: "${new URL(keyed.url).host}" }\ndataDir: ${JSON.stringify(join(dir, 'data'))}\npolicies: [${JSON.stringify(DEFAULT_POLICY)}]\n`);
      const args = ['policy', 'explain', '--config', keyedConfig, '--json', '--call', JSON.stringify({ tool: 'fx__write', principal: 'ops' })];
      const without = JSON.parse((await gatehouse(args, { cwd: tmpdir() })).stdout) as { facts: { source: { from: string; why?: string } } };
      expect(without.facts.source).toMatchObject({ from: 'call', why: expect.stringContaining('HTTP 401') });
      const withKey = JSON.parse((await gatehouse(args, { cwd: tmpdir(), env: { GATEHOUSE_API_KEY: key } })).stdout) as { facts: { source: { from: string } }; decision: { effect: string } };
      expect(withKey.facts.source.from).toBe('gateway');
      expect(withKey.decision.effect).toBe('require_approval');
    } finally {
      await keyed.close();
    }
  });
});
