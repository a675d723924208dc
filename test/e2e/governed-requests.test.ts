/**
 * Resources, prompts and completions are governed as tool calls are (issue 10, item 1): each request is a job the
 * kernel decides on its URI or prompt, audited, held for a human when the policy says so; what could never be allowed
 * is left out of the lists, and the lists and the requests agree. A real gateway in front of the conformance fixture
 * (a real MCP server over HTTP), driven by the official SDK client.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { startConformanceServer, type ConformanceServerHandle } from '../fixtures/conformance-server.ts';
import { auditOf, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { connectWithKey } from '../helpers/approvers.ts';
import type { Upstream } from '../../src/ports.ts';

const POLICY = `version: 2
default: deny
rules:
  - id: tools-run
    match: { tools: ["*"] }
    effect: allow
  - id: static-resources
    match: { resources: ["test://static-text", "test://watched-resource", "test://template/*"] }
    effect: allow
  - id: no-secret-templates
    match: { resources: ["test://template/*"] }
    when: 'uri.contains("/secret/")'
    effect: deny
  - id: binary-needs-a-human
    match: { resources: ["test://static-binary"] }
    effect: require_approval
  - id: some-prompts
    match: { prompts: ["cf__test_simple_prompt", "cf__test_prompt_with_arguments"] }
    effect: allow
  - id: no-forbidden-argument
    match: { prompts: ["cf__test_prompt_with_arguments"] }
    when: 'has(args.arg1) && args.arg1 == "forbidden"'
    effect: deny
  - id: no-subscriptions-for-mallory
    match: { principals: [mallory] }
    when: 'method == "resources/subscribe"'
    effect: deny
`;

const KEYS = { tester: 'tester-key-0123456789abcdef', mallory: 'mallory-key-0123456789abcdef' };

let fixture: ConformanceServerHandle;
let policyFile: string;
let h: Harness;
let client: Client;
let direct: Client;
/** The methods the gateway sent the upstream, in order. */
const sent: string[] = [];

beforeAll(async () => {
  fixture = await startConformanceServer(0);
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-governed-'));
  policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  h = await startHarness({
    policies: [policyFile],
    upstreams: { cf: { url: fixture.url, timeout: 60_000 } } as never,
    auth: { apiKeys: [{ key: KEYS.tester, principal: 'tester', tenant: 'default', roles: [] }, { key: KEYS.mallory, principal: 'mallory', tenant: 'default', roles: [] }] } as never,
  });
  const upstream = h.gateway.directory.get('cf')! as Upstream;
  const request = upstream.request.bind(upstream);
  upstream.request = (method, params, options) => {
    sent.push(method);
    return request(method, params, options);
  };
  client = await connectWithKey(h.url, KEYS.tester);
  direct = await connectWithKey(fixture.url, undefined);
});

afterAll(async () => {
  await client?.close();
  await direct?.close();
  await h?.close();
  await fixture?.close();
});

/** The JSON-RPC error a request was refused with: its `data.code` and the rest of `data`. */
async function refusal(request: Promise<unknown>): Promise<{ code: number; data: { code: string } & Record<string, unknown> }> {
  const error = (await request.then(
    () => undefined,
    (err: unknown) => err,
  )) as { code: number; data: { code: string } & Record<string, unknown> } | undefined;
  if (!error) throw new Error('the request was not refused');
  return error;
}

/** The audit records of the job whose `job.submitted` names this request. */
async function jobRecords(tool: string): Promise<string[]> {
  await h.gateway.audit.written('default');
  const records = await auditOf(h.dataDir, 'default');
  const submitted = records.filter((r) => r.type === 'job.submitted' && (r.data as { tool?: string }).tool === tool).at(-1);
  if (!submitted) return [];
  return records.filter((r) => r.jobId === submitted.jobId).map((r) => r.type);
}

describe('resources', () => {
  it('reads an allowed resource as a job: decided, audited, run by the executor', async () => {
    const read = await client.readResource({ uri: 'test://static-text' });
    expect(read.contents[0]).toMatchObject({ uri: 'test://static-text', text: 'This is the content of the static text resource.' });
    expect(read._meta?.['gatehouse/job']).toMatchObject({ decision: 'allow', ruleIds: ['static-resources'] });
    expect(await jobRecords('resources/read test://static-text')).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.succeeded']);
  });

  it('refuses a denied read with a JSON-RPC error carrying the code, audited, without asking the upstream', async () => {
    const before = sent.length;
    const error = await refusal(client.readResource({ uri: 'test://template/secret/data' }));
    expect(error.data).toMatchObject({ code: 'GH_ERR_POLICY_DENIED', 'gatehouse/job': { decision: 'deny', ruleIds: ['no-secret-templates', 'static-resources'] } });
    expect(sent.slice(before)).not.toContain('resources/read');
    expect(await jobRecords('resources/read test://template/secret/data')).toEqual(['job.submitted', 'job.decided', 'job.denied']);
    // The same template with another id is allowed: the URI is what the rules match.
    expect((await client.readResource({ uri: 'test://template/42/data' })).contents[0]).toMatchObject({ uri: 'test://template/42/data' });
  });

  it('refuses a URI whose dot segments would name another resource than it reads as', async () => {
    for (const uri of ['test://static-text/../static-binary', 'test://template/%2e%2e/secret/data', 'test://static-text\\x']) {
      const error = await refusal(client.readResource({ uri }));
      expect(error).toMatchObject({ code: -32602, data: { code: 'GH_ERR_INVALID_ARGUMENTS' } });
    }
  });

  it('holds a read the policy puts before a human, and runs it once approved', async () => {
    const before = sent.length;
    const pending = await refusal(client.readResource({ uri: 'test://static-binary' }));
    expect(pending.data.code).toBe('GH_ERR_APPROVAL_PENDING');
    const [approval] = await h.gateway.approvals.list('pending');
    expect(approval).toMatchObject({ tool: 'resources/read test://static-binary', server: 'cf', principal: 'tester' });
    expect(sent.slice(before)).not.toContain('resources/read');
    await h.gateway.approvals.approve(approval.id, 'alice');
    const read = await client.readResource({ uri: 'test://static-binary' });
    expect(read.contents[0]).toMatchObject({ uri: 'test://static-binary', mimeType: 'image/png' });
    expect(read._meta?.['gatehouse/job']).toMatchObject({ decision: 'require_approval', approvalId: approval.id });
  });

  it('decides and audits each subscription; a refused one is not held', async () => {
    await client.subscribeResource({ uri: 'test://watched-resource' });
    expect(await jobRecords('resources/subscribe test://watched-resource')).toContain('job.succeeded');
    expect(h.gateway.subscriptions.subscribers('test://watched-resource').size).toBe(1);

    const mallory = await connectWithKey(h.url, KEYS.mallory);
    const before = sent.length;
    const error = await refusal(mallory.subscribeResource({ uri: 'test://static-text' }));
    expect(error.data).toMatchObject({ code: 'GH_ERR_POLICY_DENIED', 'gatehouse/job': { ruleIds: ['no-subscriptions-for-mallory', 'static-resources'] } });
    expect(h.gateway.subscriptions.has('test://static-text')).toBe(false);
    expect(sent.slice(before)).not.toContain('resources/subscribe');
    // A read is no subscription: the rule's condition on the method leaves it alone.
    expect((await mallory.readResource({ uri: 'test://static-text' })).contents).toHaveLength(1);
    await mallory.close();
  });
});

describe('prompts and completions', () => {
  it('gets an allowed prompt, and refuses one whose arguments a rule denies', async () => {
    const got = await client.getPrompt({ name: 'cf__test_prompt_with_arguments', arguments: { arg1: 'a', arg2: 'b' } });
    expect(JSON.stringify(got.messages)).toContain("arg1='a', arg2='b'");
    const error = await refusal(client.getPrompt({ name: 'cf__test_prompt_with_arguments', arguments: { arg1: 'forbidden', arg2: 'b' } }));
    expect(error.data).toMatchObject({ code: 'GH_ERR_POLICY_DENIED', 'gatehouse/job': { ruleIds: ['no-forbidden-argument', 'some-prompts'] } });
    expect(await jobRecords('prompts/get cf__test_prompt_with_arguments')).toEqual(['job.submitted', 'job.decided', 'job.denied']);
  });

  it('governs a completion as the prompt whose argument it completes', async () => {
    const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'cf__test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'par' } });
    expect(completion.completion.values).toEqual(['paris', 'park', 'party']);
    expect(await jobRecords('completion/complete cf__test_prompt_with_arguments')).toContain('job.succeeded');
    const error = await refusal(client.complete({ ref: { type: 'ref/prompt', name: 'cf__test_prompt_with_image' }, argument: { name: 'x', value: '' } }));
    expect(error.data.code).toBe('GH_ERR_POLICY_DENIED');
  });
});

describe('lists and requests agree', () => {
  it('lists exactly the resources, templates and prompts that a request could be allowed for', async () => {
    const [resources, templates, prompts] = await Promise.all([client.listResources(), client.listResourceTemplates(), client.listPrompts()]);
    const [allResources, allTemplates, allPrompts] = await Promise.all([direct.listResources(), direct.listResourceTemplates(), direct.listPrompts()]);
    const listed = new Set(resources.resources.map((r) => r.uri));
    expect([...listed].sort()).toEqual(['test://static-binary', 'test://static-text', 'test://watched-resource']);
    expect(templates.resourceTemplates.map((t) => t.uriTemplate)).toEqual(['test://template/{id}/data']);
    expect(prompts.prompts.map((p) => p.name).sort()).toEqual(['cf__test_prompt_with_arguments', 'cf__test_simple_prompt']);
    expect(allTemplates.resourceTemplates).toHaveLength(1);

    // Parity: every resource the upstream has is read; a listed one is never refused by the policy, an unlisted one always is.
    for (const { uri } of allResources.resources) {
      const outcome = await client.readResource({ uri }).then(
        () => 'ran',
        (err: { data?: { code?: string } }) => err.data?.code,
      );
      if (listed.has(uri)) expect(outcome, uri).not.toBe('GH_ERR_POLICY_DENIED');
      else expect(outcome, uri).toBe('GH_ERR_POLICY_DENIED');
    }
    const listedPrompts = new Set(prompts.prompts.map((p) => p.name));
    for (const { name } of allPrompts.prompts) {
      const outcome = await client.getPrompt({ name: `cf__${name}`, arguments: { arg1: 'a', arg2: 'b' } }).then(
        () => 'ran',
        (err: { data?: { code?: string } }) => err.data?.code,
      );
      if (listedPrompts.has(`cf__${name}`)) expect(outcome, name).not.toBe('GH_ERR_POLICY_DENIED');
      else expect(outcome, name).toBe('GH_ERR_POLICY_DENIED');
    }
  });

  it('tells clients to list again when the policy changes what they may see', async () => {
    const changed: string[] = [];
    for (const list of ['resources', 'prompts'] as const) {
      client.setNotificationHandler(`notifications/${list}/list_changed` as never, () => void changed.push(list));
    }
    writeFileSync(policyFile, `${POLICY}  - id: never\n    match: { principals: [nobody] }\n    effect: deny\n`);
    expect(h.gateway.reloadPolicy()).toMatchObject({ kind: 'swapped' });
    await waitFor(() => changed.length === 2, 'list_changed for resources and prompts');
  });
});
