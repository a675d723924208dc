import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, FIXTURE_UPSTREAM, waitFor } from '../helpers/gateway-harness.ts';
import { startProcess, writeStartConfig, type StartedProcess } from '../helpers/start-process.ts';
import { digestOf } from '../../src/protocol/digest.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

// The probe (item 10): 200 concurrent calls to a real `gatehouse start`, `kill -9` while they run. Every
// call that reached the upstream must have its decision on record: nothing is dispatched before its records are
// written (the dispatch barrier in the scheduler, a group commit of the audit trail).

const CALLS = 200;
const CLIENTS = 4;

const processes: StartedProcess[] = [];
afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.stop()));
});

/** The keys the fixture's `write` tool appended: the calls that reached the upstream. */
function reached(sideEffects: string): string[] {
  return existsSync(sideEffects) ? readFileSync(sideEffects, 'utf8').split('\n').filter(Boolean).map((line) => line.split('=')[0]) : [];
}

/** Whether a process still runs with `marker` in its environment (the orphaned upstream of a killed gateway). */
function runningWith(marker: string): boolean {
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').includes(marker)) return true;
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return false;
}

/** Every whole record of the chain file (a line cut by the kill is not a record). */
function chain(dataDir: string): AuditRecord[] {
  const file = join(dataDir, 'audit', 'default.jsonl');
  const records: AuditRecord[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      records.push(JSON.parse(line) as AuditRecord);
    } catch {
      // a torn last line: what it held was not written
    }
  }
  return records;
}

describe('kill -9 while 200 calls run', () => {
  it('leaves no call that reached the upstream without its submitted, decided and dispatched records', async () => {
    const work = mkdtempSync(join(tmpdir(), 'gh-kill-'));
    const sideEffects = join(work, 'side-effects.log');
    const policy = join(work, 'allow-all.yaml');
    writeFileSync(policy, 'version: 2\ndefault: allow\nrules: []\n');
    const { dir, config, dataDir } = writeStartConfig({ upstream: 'fx', script: FIXTURE_UPSTREAM, env: { SIDE_EFFECTS_FILE: sideEffects }, policy });

    const gateway = await startProcess(config, dir);
    processes.push(gateway);
    const clients: Client[] = await Promise.all(Array.from({ length: CLIENTS }, () => connectHttp(gateway.url)));
    const calls = Array.from({ length: CALLS }, (_, i) => clients[i % CLIENTS].callTool({ name: 'fx__write', arguments: { key: `c${i}`, value: 'v' } }).catch(() => undefined));
    // Killed while calls flow: once a quarter of them reached the upstream.
    await waitFor(() => reached(sideEffects).length >= CALLS / 4, 'calls to reach the upstream');
    gateway.child.kill('SIGKILL');
    await new Promise((r) => (gateway.child.exitCode !== null || gateway.child.signalCode !== null ? r(undefined) : gateway.child.once('exit', r)));
    await Promise.all(calls);
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    // The orphaned upstream still runs what was already in its pipe: those calls were dispatched too.
    await waitFor(() => !runningWith(sideEffects), 'the orphaned upstream to exit');

    // Restarted on the same data dir, then stopped: what the chain holds is what survived.
    const again = await startProcess(config, dir);
    processes.push(again);
    await again.stop();

    const records = chain(dataDir);
    const byDigest = new Map(records.filter((r) => r.type === 'job.submitted').map((r) => [r.data.argsDigest as string, r.jobId!]));
    const typesOf = (jobId: string | undefined) => new Set(records.filter((r) => r.jobId === jobId).map((r) => r.type));
    const keys = reached(sideEffects);
    expect(keys.length).toBeGreaterThanOrEqual(CALLS / 4);
    const unrecorded = keys.filter((key) => {
      const types = typesOf(byDigest.get(digestOf({ key, value: 'v' })));
      return !(types.has('job.submitted') && types.has('job.decided') && types.has('job.dispatched'));
    });
    expect({ reached: keys.length, unrecorded }).toEqual({ reached: keys.length, unrecorded: [] });
  }, 120_000);
});
