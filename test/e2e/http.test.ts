import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, startHarness, type Era, type Harness } from '../helpers/gateway-harness.ts';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.close();
});

describe.each<Era>(['legacy', 'modern'])('Streamable HTTP, %s era', (era) => {
  it('lists the upstream tools under namespaced names', async () => {
    const client = await connectHttp(harness.url, era);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['fx__ask', 'fx__big', 'fx__crash', 'fx__deaf', 'fx__echo', 'fx__grow', 'fx__meta', 'fx__slow', 'fx__slow_write', 'fx__write', 'gatehouse_approval_status', 'gatehouse_approval_wait']);
    await client.close();
  });

  it('runs an allowed call and stamps the job on the result', async () => {
    const client = await connectHttp(harness.url, era);
    const result = await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    expect(result.content).toEqual([{ type: 'text', text: 'echo: hi' }]);
    const job = (result._meta as Record<string, any>)['gatehouse/job'];
    expect(job.decision).toBe('allow');
    expect(job.ruleIds).toContain('read-only-tools');
    expect(job.policySnapshot).toMatch(/^sha256:[0-9a-f]{64}$/);
    await client.close();
  });
});
