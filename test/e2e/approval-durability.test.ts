import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectHttp, FIXTURE_UPSTREAM, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import { startProcess, writeStartConfig, type StartedProcess } from '../helpers/start-process.ts';

const write = { name: 'fx__write', arguments: { key: 'k', value: 'v' } };
const text = (result: { content: unknown }) => (result.content as { text: string }[])[0].text;
const approvalId = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/approval'] as { id: string }).id;

const processes: StartedProcess[] = [];
const track = (started: StartedProcess) => (processes.push(started), started);
const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.stop()));
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

describe('approvals survive a crash', () => {
  it('kill -9 while a call is pending, restart, approve with the CLI: the retry runs once, the next does not', async () => {
    const sideEffects = join(mkdtempSync(join(tmpdir(), 'gh-crash-')), 'side-effects.log');
    const writes = () => (existsSync(sideEffects) ? readFileSync(sideEffects, 'utf8').split('\n').filter(Boolean).length : 0);
    const { dir, config, dataDir } = writeStartConfig({ upstream: 'fx', script: FIXTURE_UPSTREAM, env: { SIDE_EFFECTS_FILE: sideEffects } });

    const first = track(await startProcess(config, dir));
    let client = await connectHttp(first.url);
    const pending = await client.callTool(write);
    expect(text(pending)).toContain('GH_ERR_APPROVAL_PENDING');
    const id = approvalId(pending);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    await client.close().catch(() => undefined);
    expect(writes()).toBe(0);

    const second = track(await startProcess(config, dir));
    const shown = await gatehouse(['approvals', 'show', id, '--data-dir', dataDir]);
    expect(shown.stdout).toMatch(/state\s+pending/);
    expect(await gatehouse(['approvals', 'approve', id, '--as', 'bob', '--data-dir', dataDir])).toMatchObject({ code: 0 });

    client = await connectHttp(second.url);
    const ran = await client.callTool(write);
    expect(text(ran)).toBe('wrote k');
    expect(writes()).toBe(1);
    const again = await client.callTool(write);
    expect(text(again)).toContain('GH_ERR_APPROVAL_PENDING');
    expect(approvalId(again)).not.toBe(id);
    expect(writes()).toBe(1);
    await client.close();

    const used = await gatehouse(['approvals', 'show', id, '--data-dir', dataDir]);
    expect(used.stdout).toMatch(/state\s+consumed/);
  });
});

describe('approvers on the CLI', () => {
  it('refuses an approver the rule does not allow, with the code, and counts votes toward the quorum', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-approvers-'));
    writeFileSync(
      join(dir, 'policy.yaml'),
      'version: 2\ndefault: allow\nrules:\n  - { id: w, match: { tools: [fx__write] }, effect: require_approval, approval: { approvers: [bob, "group:ops"], quorum: 2, selfApprove: false } }\n',
    );
    const h = await startHarness({ policies: [dir], approvals: { ttl: 60_000, holdBudget: 45_000, holdBudgetByClient: {}, groups: { ops: ['carol'] } } });
    harnesses.push(h);
    const client = await connectHttp(h.url);
    const id = approvalId(await client.callTool(write));

    const stranger = await gatehouse(['approvals', 'approve', id, '--as', 'mallory', '--data-dir', h.dataDir]);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toContain('[GH_ERR_APPROVER_NOT_ALLOWED]');
    expect(stranger.stderr).toContain('mallory');
    const self = await gatehouse(['approvals', 'approve', id, '--as', 'tester', '--data-dir', h.dataDir]);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('[GH_ERR_SELF_APPROVAL_FORBIDDEN]');

    const bob = await gatehouse(['approvals', 'approve', id, '--as', 'bob', '--data-dir', h.dataDir]);
    expect(bob).toMatchObject({ code: 0 });
    expect(bob.stdout).toContain('1 of 2 approvals');
    const shown = (await gatehouse(['approvals', 'show', id, '--data-dir', h.dataDir])).stdout;
    expect(shown).toMatch(/state\s+pending/);
    expect(shown).toMatch(/approvers\s+bob, group:ops \(carol when asked\)/);
    expect(shown).toMatch(/quorum\s+2 distinct approvers; votes so far: bob/);
    expect(shown).toContain('tester may not approve their own call');
    expect(text(await client.callTool(write))).toContain('GH_ERR_APPROVAL_PENDING');

    // carol is in ops by the record's membership, read without the config (--data-dir only).
    expect(await gatehouse(['approvals', 'approve', id, '--as', 'carol', '--data-dir', h.dataDir])).toMatchObject({ code: 0 });
    expect(text(await client.callTool(write))).toBe('wrote k');
    expect(h.writes()).toBe(1);
    await client.close();

    const trail = (await gatehouse(['audit', 'tail', '-n', '100', '--data-dir', h.dataDir])).stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; actor: string; data: Record<string, unknown> });
    const approvalEvents = trail.filter((r) => r.type.startsWith('approval.') && r.data.approvalId === id).map((r) => `${r.type}:${r.actor}`);
    expect(approvalEvents).toEqual(['approval.created:tester', 'approval.refused_approver:mallory', 'approval.refused_approver:tester', 'approval.vote:bob', 'approval.approved:carol', 'approval.consumed:gatehouse']);
  });
});
