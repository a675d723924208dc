import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditOf, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { api, approverAuth, connectWithKey, KEYS } from '../helpers/approvers.ts';
import { verifyChain } from '../../src/audit/verify.ts';

const VIEWER = 'viewer-key-vera-0123456789';

let h: Harness;
let jobId: string;
beforeAll(async () => {
  h = await startHarness({ auth: { apiKeys: [...approverAuth.apiKeys, { key: VIEWER, principal: 'vera', tenant: 'default', roles: ['viewer'] }] } });
  const client = await connectWithKey(h.url, KEYS.caller, 'audit-api-test');
  for (let i = 0; i < 3; i++) {
    const result = (await client.callTool({ name: 'fx__echo', arguments: { text: `hi ${i}` } })) as { _meta?: Record<string, { jobId?: string }> };
    jobId = result._meta?.['gatehouse/job']?.jobId ?? jobId;
  }
  await client.close();
  // The outcomes are written within about 20 ms of the answer.
  await waitFor(async () => (await api(h, '/api/audit?outcome=succeeded', { key: VIEWER })).body.calls?.length === 3, 'three succeeded calls in the audit');
});
afterAll(async () => {
  await h?.close();
});

describe('GET /api/audit and /api/jobs/:id', () => {
  it('are read with a viewer, approver or admin key only: 401 without a key, 403 for a tool caller', async () => {
    for (const path of ['/api/audit', `/api/jobs/${jobId}`]) {
      expect(await api(h, path)).toMatchObject({ status: 401, body: { error: { code: 'GH_ERR_UNAUTHORIZED' } } });
      expect(await api(h, path, { key: KEYS.caller })).toMatchObject({ status: 403, body: { error: { code: 'GH_ERR_FORBIDDEN' } } });
      expect((await api(h, path, { key: VIEWER })).status).toBe(200);
      expect((await api(h, path, { key: KEYS.approver })).status).toBe(200);
    }
  });

  it('lists the calls newest first with their decision, outcome and duration, paged by cursor', async () => {
    const all = await api(h, '/api/audit?tool=fx__*', { key: VIEWER });
    expect(all.body.calls).toHaveLength(3);
    expect(all.body.calls[0]).toMatchObject({ jobId, principal: 'agent', tool: 'fx__echo', outcome: 'succeeded', tenant: 'default' });
    expect(all.body.calls[0].decision).toMatch(/^allow/);
    expect(typeof all.body.calls[0].durationMs).toBe('number');
    const first = await api(h, '/api/audit?limit=2', { key: VIEWER });
    expect(first.body.calls).toHaveLength(2);
    const second = await api(h, `/api/audit?limit=2&cursor=${first.body.next}`, { key: VIEWER });
    expect(second.body.next).toBeUndefined();
    expect([...first.body.calls, ...second.body.calls].map((c: { jobId: string }) => c.jobId)).toEqual(all.body.calls.map((c: { jobId: string }) => c.jobId));
    expect(await api(h, '/api/audit?outcome=nope', { key: VIEWER })).toMatchObject({ status: 400, body: { error: { code: 'GH_ERR_INVALID_REQUEST' } } });
    expect(await api(h, '/api/audit?cursor=forged', { key: VIEWER })).toMatchObject({ status: 400, body: { error: { code: 'GH_ERR_INVALID_REQUEST' } } });
  });

  it("keeps to the key's tenant: another tenant's approver sees no calls and no job", async () => {
    expect((await api(h, '/api/audit', { key: KEYS.otherTenant })).body.calls).toEqual([]);
    expect(await api(h, `/api/jobs/${jobId}`, { key: KEYS.otherTenant })).toMatchObject({ status: 404, body: { error: { code: 'GH_ERR_JOB_NOT_FOUND' } } });
  });

  it('GET /api/jobs/:id returns the call with every record of its job, hashes that verify in the chain', async () => {
    const { status, body } = await api(h, `/api/jobs/${jobId}`, { key: VIEWER });
    expect(status).toBe(200);
    expect(body.call).toMatchObject({ jobId, outcome: 'succeeded' });
    const types = body.call.records.map((r: { type: string }) => r.type);
    expect(types[0]).toBe('job.submitted');
    expect(types).toContain('job.decided');
    expect(types.at(-1)).toBe('job.succeeded');
    for (const record of body.call.records) expect(record.jobId).toBe(jobId);
    // The records are the chain's own: the whole chain verifies with them in it, hash for hash.
    const chain = await auditOf(h.dataDir, 'default');
    for (const record of body.call.records) expect(chain.find((r) => r.seq === record.seq)?.hash).toBe(record.hash);
    expect((await verifyChain('default', chain)).ok).toBe(true);
    expect(await api(h, '/api/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV', { key: VIEWER })).toMatchObject({ status: 404, body: { error: { code: 'GH_ERR_JOB_NOT_FOUND' } } });
  });
});

describe('GET /api/audit without API keys, on loopback', () => {
  it('is open to the local user, like the approvals API', async () => {
    const local = await startHarness();
    try {
      const { status, body } = await api(local, '/api/audit');
      expect(status).toBe(200);
      expect(body).toEqual({ calls: [] });
    } finally {
      await local.close();
    }
  });
});
