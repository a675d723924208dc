import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { api, approverAuth, connectWithKey, KEYS } from '../helpers/approvers.ts';
import { csrfOf, PageClient } from '../helpers/page-client.ts';
import { gatehouse } from '../helpers/cli.ts';

// A decision is final: approving or denying an approval that is no longer pending answers 409 with a code (API), a
// page that says so (the page), exit 1 with the code (CLI), and changes nothing.

const harnesses: Harness[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function harness(): Promise<Harness> {
  const h = await startHarness({ auth: approverAuth });
  harnesses.push(h);
  return h;
}

/** A write that is answered at once with a pending result (no progress token, so nothing holds it). */
async function pendingWrite(h: Harness, value = 'v'): Promise<string> {
  const client = await connectWithKey(h.url, KEYS.caller);
  clients.push(client);
  const result = await client.callTool({ name: 'fx__write', arguments: { key: 'k', value } });
  return ((result._meta as Record<string, unknown>)['gatehouse/approval'] as { id: string }).id;
}

const approve = (h: Harness, id: string) => api(h, `/api/approvals/${id}/approve`, { method: 'POST', key: KEYS.approver });
const deny = (h: Harness, id: string) => api(h, `/api/approvals/${id}/deny`, { method: 'POST', key: KEYS.approver });

describe('a second decision on a decided approval', () => {
  it('answers 409 GH_ERR_APPROVAL_INVALID_STATE in the API, for the same approver as for another, and changes nothing', async () => {
    const h = await harness();
    const id = await pendingWrite(h);
    expect((await approve(h, id)).status).toBe(200);
    const history = (await h.gateway.approvals.get(id))!.history;

    const again = await approve(h, id);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('GH_ERR_APPROVAL_INVALID_STATE');
    const late = await deny(h, id);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('GH_ERR_APPROVAL_INVALID_STATE');
    expect((await h.gateway.approvals.get(id))!).toMatchObject({ state: 'approved', history });

    const denied = await pendingWrite(h, 'other');
    expect((await deny(h, denied)).status).toBe(200);
    expect((await deny(h, denied)).body.error.code).toBe('GH_ERR_APPROVAL_INVALID_STATE');
    expect((await approve(h, denied)).status).toBe(409);
    expect((await h.gateway.approvals.get(denied))!.state).toBe('denied');
  });

  it('shows the page again with a message saying it was already decided, and the 409 status', async () => {
    const h = await harness();
    const id = await pendingWrite(h);
    const browser = new PageClient(h);
    await browser.login(KEYS.approver);
    const form = await browser.get(`/approvals/${id}`);
    const token = csrfOf(form.html);
    expect((await browser.post(`/approvals/${id}`, { csrf: token, decision: 'approve', reason: '' })).status).toBe(303);

    // A second tab still showing the form, or a double click.
    const again = await browser.post(`/approvals/${id}`, { csrf: token, decision: 'approve', reason: '' });
    expect(again.status).toBe(409);
    expect(again.html).toContain('GH_ERR_APPROVAL_INVALID_STATE');
    expect(again.html).toMatch(/already approved by alice/);
    expect(again.html).toContain('id="state">approved<');
    expect(again.html).not.toContain('class="approve"'); // no form to act on a decided approval
  });

  it('makes the CLI exit 1 with the code', async () => {
    const h = await harness();
    const id = await pendingWrite(h);
    expect((await gatehouse(['approvals', 'approve', id, '--as', 'bob', '--data-dir', h.dataDir])).code).toBe(0);
    const again = await gatehouse(['approvals', 'approve', id, '--as', 'bob', '--data-dir', h.dataDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[GH_ERR_APPROVAL_INVALID_STATE]');
    const late = await gatehouse(['approvals', 'deny', id, '--as', 'bob', '--data-dir', h.dataDir]);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('[GH_ERR_APPROVAL_INVALID_STATE]');
    expect((await h.gateway.approvals.get(id))!.history.map((t) => t.state)).toEqual(['pending', 'approved']);
  }, 90_000); // three CLI processes, each several seconds on a loaded machine
});
