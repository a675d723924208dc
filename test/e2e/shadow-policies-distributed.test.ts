import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, waitFor } from '../helpers/gateway-harness.ts';
import { clusterAvailable, startCluster, text, type Cluster, type ToolResult } from '../helpers/distributed.ts';
import { gatehouse } from '../helpers/cli.ts';
import type { ShadowReport } from '../../src/kernel/authoring/shadow-report.ts';

// Two replicas with one shadowPolicies draft that denies every echo: calls through either run, and the report read
// from the shared Redis chain counts every one of them.
describe.skipIf(!clusterAvailable())('shadow policies (distributed)', () => {
  let cluster: Cluster;
  const clients: Client[] = [];

  beforeAll(async () => {
    const draft = join(mkdtempSync(join(tmpdir(), 'gh-shadow-')), 'draft.yaml');
    writeFileSync(draft, 'version: 2\ndefault: allow\nrules:\n  - { id: draft-no-echo, match: { tools: [fx__echo] }, effect: deny }\n');
    cluster = await startCluster({ gateways: 2, workers: 1, extraConfig: [`shadowPolicies: [${JSON.stringify(draft)}]`] });
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await cluster?.stop();
  });

  it('decides the draft on every replica, never blocks a call, and reports them all from the shared chain', async () => {
    for (const gateway of cluster.gateways) clients.push(await connectHttp(gateway.url));
    for (const client of clients) await waitFor(async () => (await client.listTools()).tools.some((t) => t.name === 'fx__echo'), 'the pool’s tools to be listed');
    for (let i = 0; i < 6; i++) {
      const result = (await clients[i % 2].callTool({ name: 'fx__echo', arguments: { text: `shadowed-${i}` } })) as ToolResult;
      expect(text(result)).toContain(`shadowed-${i}`);
    }
    let report: ShadowReport | undefined;
    await waitFor(async () => {
      const run = await gatehouse(['policy', 'shadow', '--config', cluster.config, '--json']);
      report = JSON.parse(run.stdout) as ShadowReport;
      return report.shadowed === 6;
    }, 'every decision to be in the chain');
    expect(report!.policies).toEqual([expect.objectContaining({ policy: 'draft', decided: 6, changed: 6, groups: [expect.objectContaining({ from: 'allow', to: 'deny', count: 6, ruleIds: ['draft-no-echo'] })] })]);
  });
});
