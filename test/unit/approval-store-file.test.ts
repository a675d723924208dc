import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/**
 * An update appends the record as one line instead of replacing the file: on ext4, a rename over an existing file
 * forces the new file's data to disk first (auto_da_alloc), ~1 ms at p50 and ~10 ms at p99 on a busy disk, and an
 * approval's round trip made two such replacements (the approval, then the call's claim).
 */
describe('FileApprovalStore, updates appended', () => {
  const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);
  /** A store in a fresh data dir holding one new approval, and that approval's file. */
  const storeWith = async (id: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-file-'));
    const store = new FileApprovalStore(dir);
    await store.create(sampleApproval(id));
    return { dir, store, path: join(dir, 'approvals', `${id}.json`) };
  };

  it('appends each update to the same file, and reads the last line', async () => {
    const { dir, store, path } = await storeWith('apr_a');
    const inode = statSync(path).ino;
    await store.update('apr_a', (r) => ({ ...r, state: 'approved' }));
    await store.update('apr_a', (r) => ({ ...r, state: 'consumed' }));
    expect(statSync(path).ino).toBe(inode);
    expect(lines(path).map((line) => JSON.parse(line).state)).toEqual(['pending', 'approved', 'consumed']);
    const other = new FileApprovalStore(dir);
    expect((await other.get('apr_a'))?.state).toBe('consumed');
    await store.close();
    await other.close();
  });

  it('reads past a torn last line (a write cut short) to the record before it, and rewrites the file whole at the next update', async () => {
    const { dir, store, path } = await storeWith('apr_t');
    appendFileSync(path, '{"id":"apr_t","state":"appro');
    const other = new FileApprovalStore(dir);
    expect((await other.get('apr_t'))?.state).toBe('pending');
    await other.update('apr_t', (r) => ({ ...r, state: 'approved' }));
    expect(lines(path).map((line) => JSON.parse(line).state)).toEqual(['approved']);
    expect((await new FileApprovalStore(dir).get('apr_t'))?.state).toBe('approved');
    await store.close();
    await other.close();
  });

  it('still reports a file with no whole record as corrupt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-file-'));
    const store = new FileApprovalStore(dir);
    writeFileSync(join(dir, 'approvals', 'apr_cut.json'), '{"id":"apr_cut","state":"pend');
    await expect(store.get('apr_cut')).rejects.toMatchObject({ code: 'GH_ERR_DATA_CORRUPT' });
    writeFileSync(join(dir, 'approvals', 'apr_bad.json'), 'not json\n');
    await expect(store.get('apr_bad')).rejects.toMatchObject({ code: 'GH_ERR_DATA_CORRUPT' });
    await store.close();
  });

  it('rewrites a file that grew long into one line', async () => {
    const { store, path } = await storeWith('apr_long');
    for (let i = 0; i < 200; i++) await store.update('apr_long', (r) => ({ ...r, votes: [{ actor: `a${i}`, at: i }] }));
    expect(statSync(path).size).toBeLessThanOrEqual(64 * 1024 + 4096);
    expect(JSON.parse(lines(path).at(-1)!).votes).toEqual([{ actor: 'a199', at: 199 }]);
    await store.close();
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

  it('indexes each call under its binding, and makes a binding folder removed since again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-apr-file-'));
    const store = new FileApprovalStore(dir);
    for (let i = 0; i < 30; i++) await store.create(sampleApproval(`b${i}`, { bindingKey: `k${i}` }));
    expect((await store.list({ bindingKey: 'k7' })).map((r) => r.id)).toEqual(['b7']);
    // A binding folder removed since is made again.
    rmSync(join(dir, 'approvals', 'by-binding'), { recursive: true });
    await store.create(sampleApproval('b_again', { bindingKey: 'k7' }));
    expect((await store.list({ bindingKey: 'k7' })).map((r) => r.id)).toEqual(['b_again']);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
