import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { loadPolicyFiles } from '../../src/kernel/bundle.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import type { Client } from '@modelcontextprotocol/client';

const ALLOW_ECHO = `version: 1
default: allow
rules:
  - { id: echo-ok, match: { tools: ["fx__echo"] }, effect: allow }
`;
const DENY_ECHO = `version: 1
default: allow
rules:
  - { id: echo-no, match: { tools: ["fx__echo"] }, effect: deny, reason: echo is off }
`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policies-'));
const policyFile = join(dir, 'policy.yaml');
/** Editors save by writing a temporary file and renaming it over the old one. */
const save = (text: string) => {
  writeFileSync(`${policyFile}.tmp`, text);
  renameSync(`${policyFile}.tmp`, policyFile);
};
const snapshotOf = (text: string) => {
  const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-snap-')), 'p.yaml');
  writeFileSync(file, text);
  return loadPolicyFiles([file]).snapshot;
};
const ALLOW = snapshotOf(ALLOW_ECHO);
const DENY = snapshotOf(DENY_ECHO);

let h: Harness;
let client: Client;
beforeAll(async () => {
  save(ALLOW_ECHO);
  h = await startHarness({ policies: [policyFile] });
  client = await connectHttp(h.url);
});
afterAll(async () => {
  await client?.close();
  await h?.close();
});

const echo = async () => {
  const result = (await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } })) as { isError?: boolean; _meta?: Record<string, { policySnapshot?: string; code?: string }> };
  return { snapshot: result._meta?.['gatehouse/job']?.policySnapshot, denied: result._meta?.['gatehouse/error']?.code === 'GH_ERR_POLICY_DENIED', isError: result.isError === true };
};
const auditRecords = async () => {
  await h.gateway.audit.flush();
  return readFileSync(join(h.dataDir, 'audit', 'default.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
};

describe('policy hot reload', () => {
  it('swaps in a changed policy file, audits old and new snapshots, and tells clients the list may have changed', async () => {
    expect(await echo()).toMatchObject({ snapshot: ALLOW, isError: false });
    let listChanged = 0;
    client.setNotificationHandler('notifications/tools/list_changed' as never, () => void listChanged++);
    save(DENY_ECHO);
    await waitFor(() => h.gateway.kernel.snapshot === DENY, 'the new policy to be loaded');
    expect(await echo()).toMatchObject({ snapshot: DENY, denied: true });
    const reloaded = (await auditRecords()).filter((r) => r.type === 'policy.reloaded');
    expect(reloaded.at(-1)?.data).toMatchObject({ previous: ALLOW, current: DENY });
    await waitFor(() => listChanged > 0, 'notifications/tools/list_changed');
  });

  it('refuses an invalid edit loudly and keeps serving the last good bundle', async () => {
    save('version: 1\nrules:\n  - { id: broken, effect: maybe }\n');
    await waitFor(async () => (await auditRecords()).some((r) => r.type === 'policy.reload_refused'), 'the refusal to be audited');
    const refused = (await auditRecords()).filter((r) => r.type === 'policy.reload_refused').at(-1)!;
    expect(refused.data).toMatchObject({ current: DENY });
    expect(String(refused.data.error)).toContain('policy.yaml');
    expect(h.gateway.kernel.snapshot).toBe(DENY);
    expect(await echo()).toMatchObject({ snapshot: DENY, denied: true });
  });

  it('never decides a call with a half-loaded bundle while policies change under load', async () => {
    let running = true;
    const seen: { snapshot?: string; denied: boolean; isError: boolean }[] = [];
    const callers = Array.from({ length: 6 }, async () => {
      while (running) seen.push(await echo());
    });
    for (let i = 0; i < 12; i++) {
      const next = i % 3 === 2 ? 'version: 1\nrules: [' : i % 2 === 0 ? ALLOW_ECHO : DENY_ECHO;
      save(next);
      // The reloader is called directly too, so swaps happen even between the watcher's debounced reloads.
      h.gateway.reloadPolicy('test');
      // At most one call per caller was in flight at the swap: one result more was decided after it.
      const before = seen.length;
      await waitFor(() => seen.length > before + callers.length, 'calls decided after the swap');
    }
    running = false;
    await Promise.all(callers);
    expect(seen.length).toBeGreaterThan(20);
    for (const result of seen) {
      expect([ALLOW, DENY]).toContain(result.snapshot);
      // Each decision agrees with the bundle it is stamped with.
      expect(result.denied).toBe(result.snapshot === DENY);
      expect(result.isError).toBe(result.snapshot === DENY);
    }
    expect(new Set(seen.map((r) => r.snapshot)).size).toBe(2);
  });
});
