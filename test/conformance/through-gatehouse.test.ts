/**
 * Gatehouse in front of the conformance fixture, driven by the SDK client: what the conformance rounds rely on
 * (unprefixed names with `namespace: false`, SSE resumption towards an HTTP upstream, shared resource
 * subscriptions), checked directly so a regression names its cause. The suite itself runs in `npm run conformance`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { startConformanceServer, type ConformanceServerHandle } from '../fixtures/conformance-server.ts';
import { FIXTURE_OVER_STDIO, startGatehouse, startGatehouseInFront, UPSTREAM_NAME, type GatehouseHandle } from './through-gatehouse.ts';

async function connect(url: string, era: 'legacy' | 'modern' = 'legacy'): Promise<Client> {
  const client = new Client({ name: 'through-gatehouse-test', version: '1.0.0' }, { capabilities: {}, ...(era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}) } as never);
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

const names = (items: { name: string }[]) => items.map((i) => i.name).sort();

let fixture: ConformanceServerHandle;
let gatehouse: GatehouseHandle;
beforeAll(async () => {
  fixture = await startConformanceServer(0);
  gatehouse = await startGatehouseInFront({ url: fixture.url });
});
afterAll(async () => {
  await gatehouse?.close();
  await fixture?.close();
});

describe('one upstream with namespace: false', () => {
  // Gatehouse speaks 2026-07-28 to the fixture, so it lists what the fixture lists to such a client (its MRTR tools too).
  it('exposes the upstream tools and prompts under their own names', async () => {
    const [direct, through] = await Promise.all([connect(fixture.url, 'modern'), connect(gatehouse.url)]);
    expect(names((await through.listTools()).tools)).toEqual(names((await direct.listTools()).tools));
    expect(names((await through.listPrompts()).prompts)).toEqual(names((await direct.listPrompts()).prompts));
    await Promise.all([direct.close(), through.close()]);
  });

  it('routes prompts/get and completion/complete by the unprefixed prompt name', async () => {
    const client = await connect(gatehouse.url);
    const prompt = await client.getPrompt({ name: 'test_prompt_with_arguments', arguments: { arg1: 'a', arg2: 'b' } });
    expect(JSON.stringify(prompt.messages)).toContain("arg1='a', arg2='b'");
    const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'par' } });
    expect(completion.completion.values).toEqual(['paris', 'park', 'party']);
    await client.close();
  });

  it('resumes a response stream the HTTP upstream closes mid-call, from its last event id (SEP-1699)', async () => {
    const client = await connect(gatehouse.url);
    const result = await client.callTool({ name: 'test_reconnection', arguments: {} });
    expect(result.isError).toBeFalsy();
    expect(JSON.stringify(result.content)).toContain('Reconnection test completed successfully');
    await client.close();
  });

  it('holds one upstream subscription per URI while any session still wants it', async () => {
    const upstream = gatehouse.gateway.directory.get(UPSTREAM_NAME)!;
    const forwarded: string[] = [];
    const request = upstream.request.bind(upstream);
    upstream.request = (method, params, options) => {
      if (method.startsWith('resources/') && method.endsWith('subscribe')) forwarded.push(method);
      return request(method, params, options);
    };
    try {
      const [a, b] = await Promise.all([connect(gatehouse.url), connect(gatehouse.url)]);
      const uri = 'test://watched-resource';
      await a.subscribeResource({ uri });
      await b.subscribeResource({ uri });
      await a.unsubscribeResource({ uri });
      expect(forwarded).toEqual(['resources/subscribe']);
      expect(gatehouse.gateway.subscriptions.subscribers(uri).size).toBe(1);
      await b.unsubscribeResource({ uri });
      expect(forwarded).toEqual(['resources/subscribe', 'resources/unsubscribe']);
      await Promise.all([a.close(), b.close()]);
    } finally {
      upstream.request = request;
    }
  });
});

describe('naming across upstreams', () => {
  it('lets policies match <upstream>__<tool> even when the tool is exposed unprefixed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-'));
    const policy = join(dir, 'deny-one.yaml');
    writeFileSync(policy, `version: 1\ndefault: allow\nrules:\n  - id: no-simple-text\n    match: { tools: ["${UPSTREAM_NAME}__test_simple_text"] }\n    effect: deny\n`);
    const denying = await startGatehouseInFront({ url: fixture.url }, { policies: [policy] });
    try {
      const client = await connect(denying.url);
      const denied = await client.callTool({ name: 'test_simple_text', arguments: {} });
      expect(denied.isError).toBe(true);
      expect((denied._meta as Record<string, { code?: string }>)['gatehouse/error']?.code).toBe('GH_ERR_POLICY_DENIED');
      const allowed = await client.callTool({ name: 'test_image_content', arguments: {} });
      expect(allowed.isError).toBeFalsy();
      await client.close();
    } finally {
      await denying.close();
    }
  });

  it('lists a name once when two unprefixed upstreams expose it, and keeps prefixed upstreams apart', async () => {
    const both = await startGatehouse({
      plain: { url: fixture.url, namespace: false },
      twin: { ...FIXTURE_OVER_STDIO, namespace: false },
      fx: FIXTURE_OVER_STDIO,
    }, { logLevel: 'error' }); // the collisions are logged as warnings
    try {
      const client = await connect(both.url);
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(new Set(tools).size).toBe(tools.length);
      expect(tools).toContain('test_simple_text');
      expect(tools).toContain('fx__test_simple_text');
      const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
      expect(new Set(prompts).size).toBe(prompts.length);
      expect(prompts.filter((p) => !p.startsWith('fx__')).sort()).toEqual(prompts.filter((p) => p.startsWith('fx__')).map((p) => p.slice(4)).sort());
      const viaPrefix = await client.getPrompt({ name: 'fx__test_simple_prompt' });
      expect(JSON.stringify(viaPrefix.messages)).toContain('simple prompt');
      await client.close();
    } finally {
      await both.close();
    }
  });
});
