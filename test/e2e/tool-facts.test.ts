import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, FIXTURE_UPSTREAM, ROOT, startHarness, type Harness } from '../helpers/gateway-harness.ts';

/** Annotations are the server's claims: the operator's config overrides them, and the kernel decides on its values. */
const POLICY = `version: 2
default: allow
rules:
  - { id: destructive, match: { annotations: { destructiveHint: true } }, effect: require_approval }
  - { id: prod-payments, match: { riskTags: [payments], labels: { env: prod } }, effect: deny, reason: no payments in prod }
`;

let h: Harness;
let client: Client;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-facts-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({
    policies: [dir],
    upstreams: {
      fx: {
        command: process.execPath,
        args: ['--import', 'tsx', FIXTURE_UPSTREAM],
        env: {},
        cwd: ROOT,
        timeout: 60_000,
        labels: { env: 'prod' },
        tools: { echo: { annotations: { readOnlyHint: false, destructiveHint: true } }, meta: { riskTags: ['payments'] } },
      },
    },
  });
  client = await connectHttp(h.url);
});
afterAll(async () => {
  await client?.close();
  await h?.close();
});

const errorCode = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code;

describe('tool facts from the config', () => {
  it('decides on the overridden annotations, and shows them to clients', async () => {
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === 'fx__echo')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(errorCode(await client.callTool({ name: 'fx__echo', arguments: { text: 'x' } }))).toBe('GH_ERR_APPROVAL_PENDING');
  });

  it('matches declared risk tags together with the upstream labels', async () => {
    const result = await client.callTool({ name: 'fx__meta', arguments: {} });
    expect(errorCode(result)).toBe('GH_ERR_POLICY_DENIED');
    expect((result.content as { text: string }[])[0].text).toContain('no payments in prod');
    // A tool without the tag on the same upstream is not caught by that rule.
    expect((await client.callTool({ name: 'fx__big', arguments: { bytes: 3 } })).isError).toBeFalsy();
  });
});
