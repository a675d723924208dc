// Item 11 of issue 10: an audit trail that cannot be written fails closed, quickly and visibly. The audit folder is
// made really unwritable (chmod, or chattr +i for root), not simulated.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectHttp, FIXTURE_UPSTREAM, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import { startProcess, writeStartConfig, type StartedProcess } from '../helpers/start-process.ts';
import { makeUnwritable, unwritableDirsWork } from '../helpers/unwritable-dir.ts';
import { gatehouse } from '../helpers/cli.ts';
import { digestOf } from '../../src/protocol/digest.ts';
import type { AuditEvent, AuditRecord } from '../../src/protocol/audit-record.ts';

const works = unwritableDirsWork('the unwritable-audit suite');
const undos: (() => void)[] = [];
const harnesses: Harness[] = [];
const processes: StartedProcess[] = [];
afterEach(async () => {
  for (const undo of undos.splice(0)) undo();
  await Promise.all(processes.splice(0).map((p) => p.stop()));
  await Promise.all(harnesses.splice(0).map((h) => h.close().catch(() => undefined)));
});

function allowAll(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-allow-'));
  writeFileSync(join(dir, 'allow-all.yaml'), 'version: 2\ndefault: allow\nrules: []\n');
  return dir;
}

/**
 * A busy gateway keeps the chain's lock for its next append (adapters/file/file-lock.ts, keepMs): a folder that
 * refuses new files stops its appends once the lock must be taken anew, 50 ms after the last append.
 */
const lockLetGo = (dataDir: string) => waitFor(() => !existsSync(join(dataDir, 'audit', 'default.jsonl.lock')), "the chain's lock to be let go");

const codeOf = (result: { _meta?: Record<string, unknown> }) => (result._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code;
const health = async (url: string) => {
  const response = await fetch(url.replace(/\/mcp$/, '/healthz'));
  return { status: response.status, body: (await response.json()) as { audit: { ok: boolean; accepting: boolean } } };
};

describe.skipIf(!works)('an audit folder that cannot be written', () => {
  it('turns /healthz to 503 at the first failed write, refuses the waiting call unsent, then new calls at once, and recovers with nothing lost', async () => {
    const h = await startHarness({ policies: [allowAll()], audit: { recordArguments: 'redacted', writeTimeout: 300 } });
    harnesses.push(h);
    const client = await connectHttp(h.url);
    expect((await client.callTool({ name: 'fx__write', arguments: { key: 'before', value: 'v' } })).isError).toBeFalsy();
    await h.gateway.audit.flush();
    await lockLetGo(h.dataDir);
    const undo = makeUnwritable(join(h.dataDir, 'audit'))!;
    undos.push(undo);

    const blocked = client.callTool({ name: 'fx__write', arguments: { key: 'blocked', value: 'v' } });
    // The first failed write is enough: the load balancer hears of it while the call still waits.
    await waitFor(async () => (await health(h.url)).status === 503, '/healthz to answer 503');
    expect((await health(h.url)).body.audit.ok).toBe(false);
    const refused = await blocked;
    expect(codeOf(refused)).toBe('GH_ERR_AUDIT_UNAVAILABLE');
    // It waited for its records and never reached the upstream.
    expect(readFileSync(h.sideEffects, 'utf8')).not.toContain('blocked');
    // The trail gave up once: the next call is refused at once, recording nothing.
    const next = await client.callTool({ name: 'fx__write', arguments: { key: 'next', value: 'v' } });
    expect(codeOf(next)).toBe('GH_ERR_AUDIT_UNAVAILABLE');
    expect((await health(h.url)).body.audit.accepting).toBe(false);

    undo();
    await waitFor(async () => (await health(h.url)).status === 200, '/healthz to answer 200 once the folder is writable');
    expect((await client.callTool({ name: 'fx__write', arguments: { key: 'after', value: 'v' } })).isError).toBeFalsy();
    await client.close();
    await h.gateway.audit.flush();

    const records = readFileSync(join(h.dataDir, 'audit', 'default.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    const jobId = records.find((r) => r.type === 'job.submitted' && r.data.argsDigest === digestOf({ key: 'blocked', value: 'v' }))?.jobId;
    const trail = records.filter((r) => r.jobId === jobId);
    expect(trail.map((r) => r.type)).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.failed']);
    expect(trail[3].data.errorCode).toBe('GH_ERR_AUDIT_UNAVAILABLE');
    expect(records.some((r) => r.type === 'job.submitted' && r.data.argsDigest === digestOf({ key: 'next', value: 'v' }))).toBe(false);
    expect(await gatehouse(['audit', 'verify', '--data-dir', h.dataDir])).toMatchObject({ code: 0 });
  }, 60_000);

  it('at SIGTERM, retries, then saves what it could not write under audit-unwritten/ and says how many, at error level', async () => {
    const sideEffects = join(mkdtempSync(join(tmpdir(), 'gh-spill-')), 'side-effects.log');
    const { dir, config, dataDir } = writeStartConfig({ upstream: 'fx', script: FIXTURE_UPSTREAM, env: { SIDE_EFFECTS_FILE: sideEffects }, policy: join(allowAll(), 'allow-all.yaml') });
    writeFileSync(config, `${readFileSync(config, 'utf8')}\naudit: { writeTimeout: 300ms }\n`);
    const gateway = await startProcess(config, dir);
    processes.push(gateway);
    const client = await connectHttp(gateway.url);
    expect((await client.callTool({ name: 'fx__write', arguments: { key: 'before', value: 'v' } })).isError).toBeFalsy();
    await waitFor(() => existsSync(join(dataDir, 'audit', 'default.jsonl')) && readFileSync(join(dataDir, 'audit', 'default.jsonl'), 'utf8').includes('"job.succeeded"'), 'the first call to be on record');
    await lockLetGo(dataDir);
    undos.push(makeUnwritable(join(dataDir, 'audit'))!);
    expect(codeOf(await client.callTool({ name: 'fx__write', arguments: { key: 'lost', value: 'v' } }))).toBe('GH_ERR_AUDIT_UNAVAILABLE');
    await client.close();

    await gateway.stop();
    expect(gateway.child.exitCode).toBe(1);
    const spillDir = join(dataDir, 'audit-unwritten');
    const files = readdirSync(spillDir);
    expect(files).toHaveLength(1);
    const spilled = readFileSync(join(spillDir, files[0]), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    // The clean-stop marker could not be written either: it is spilled last, after the call's own records.
    expect(spilled.map((e) => e.type)).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.failed', 'gateway.stopped']);
    expect(spilled[0].data.argsDigest).toBe(digestOf({ key: 'lost', value: 'v' }));
    const output = gateway.output();
    expect(output).toContain(`"lost":${spilled.length}`);
    expect(output).toContain('[GH_ERR_AUDIT_UNAVAILABLE]');
  }, 60_000);
});
