import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { bindingKeyOf, type ApprovalBinding } from '../../src/protocol/approval-record.ts';
import { legacyApproval, sampleApproval } from '../contract/approval-store.contract.ts';

const binding: ApprovalBinding = { tenant: 't', principal: 'alice', server: 'fx', tool: 'fx__write', argsDigest: 'sha256:a', toolDigest: 'sha256:t', policySnapshot: 'sha256:p' };

/** What the file adapter adds to the contract: the on-disk format of 0.1, and the binding index. */
describe('FileApprovalStore on disk', () => {
  it('reads a 0.1 file as it was written, finds it by its call, and keeps the file until it changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-file-'));
    new FileApprovalStore(dir); // creates approvals/
    const path = join(dir, 'approvals', 'apr_old.json');
    const text = JSON.stringify(legacyApproval('apr_old', binding), null, 2) + '\n';
    writeFileSync(path, text);
    const store = new FileApprovalStore(dir);
    expect((await store.list({ bindingKey: bindingKeyOf(binding) })).map((r) => r.id)).toEqual(['apr_old']);
    expect(readFileSync(path, 'utf8')).toBe(text);
    const updated = await store.update('apr_old', (r) => ({ ...r, state: 'approved' }));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ version: 2, bindingKey: bindingKeyOf(binding), state: 'approved', quorum: 1 });
    expect(updated.bindingKey).toBe(bindingKeyOf(binding));
    await store.close();
  });

  it('finds the approvals of a call without reading the others', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-file-'));
    const store = new FileApprovalStore(dir);
    await store.create(sampleApproval('i1', { bindingKey: 'k1' }));
    await store.create(sampleApproval('i2', { bindingKey: 'k2' }));
    expect((await store.list({ bindingKey: 'k1' })).map((r) => r.id)).toEqual(['i1']);
    // An unrelated unreadable file: listing everything trips on it, a lookup by call does not read it.
    writeFileSync(join(dir, 'approvals', 'junk.json'), '{ not json');
    await expect(store.list()).rejects.toMatchObject({ code: 'GH_ERR_DATA_CORRUPT' });
    const other = new FileApprovalStore(dir);
    expect((await other.list({ bindingKey: 'k2' })).map((r) => r.id)).toEqual(['i2']);
    await store.close();
    await other.close();
  });

  it('rebuilds a missing index from the records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-file-'));
    const store = new FileApprovalStore(dir);
    await store.create(sampleApproval('x1', { bindingKey: 'kx' }));
    await store.list({ bindingKey: 'kx' });
    expect(existsSync(join(dir, 'approvals', 'by-binding', '.complete'))).toBe(true);
    rmSync(join(dir, 'approvals', 'by-binding'), { recursive: true });
    const again = new FileApprovalStore(dir);
    expect((await again.list({ bindingKey: 'kx' })).map((r) => r.id)).toEqual(['x1']);
    await store.close();
    await again.close();
  });
});

describe('FileApprovalStore in memory', () => {
  it('caches a bounded number of parsed records however many approvals it sees, and still reads an evicted one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-file-'));
    const store = new FileApprovalStore(dir, 20);
    for (let i = 0; i < 30; i++) await store.create(sampleApproval(`c${i}`, { bindingKey: `k${i}` }));
    expect(store.cachedRecords).toBe(20);
    expect((await store.get('c0'))?.id).toBe('c0');
    expect(store.cachedRecords).toBe(20);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
