// Gateway.stop with a DLQ retry under way: the real gateway on the embedded adapters, in front of an in-process
// upstream whose call runs until it is stopped. The retry's call ends with the stop, and the retry still removes
// its entry and audits how it ended before the audit trail and the ledger close.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { ChainWriter } from '../../src/audit/chain-writer.ts';
import { Gateway } from '../../src/runtime/gateway.ts';
import { configSchema } from '../../src/config/schema.ts';
import { loadPolicyFiles } from '../../src/kernel/bundle.ts';
import { silentLogger } from '../../src/log.ts';
import type { Upstream, UpstreamListener, UpstreamRequestOptions } from '../../src/ports.ts';
import { deadLetter } from '../contract/job-ledger.contract.ts';
import { auditOf, waitFor } from '../helpers/gateway-harness.ts';

const DEAD = '01JDEADSTOP000000000000001';

/** Lists one tool, `write`; each call runs until its executor stops it. */
function runningUpstream(calls: Record<string, unknown>[]): Upstream {
  return {
    name: 'fx',
    state: 'ready',
    serverCapabilities: { tools: {} },
    start: async (listener: UpstreamListener) => listener.state?.('ready'),
    notify: async () => undefined,
    close: async () => undefined,
    request: async (method: string, params: Record<string, unknown> | undefined, options?: UpstreamRequestOptions) => {
      if (method === 'tools/list') return { tools: [{ name: 'write', inputSchema: { type: 'object' } }] };
      calls.push(params!.arguments as Record<string, unknown>);
      return new Promise((_, reject) => options?.signal?.addEventListener('abort', () => reject(new Error('stopped')), { once: true }));
    },
  } as Upstream;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Gateway.stop', () => {
  it('lets a DLQ retry under way finish its bookkeeping and audit before the audit trail and the ledger close', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-gateway-stop-'));
    const policy = join(dataDir, 'allow.yaml');
    writeFileSync(policy, 'version: 1\ndefault: allow\n');
    const config = configSchema.parse({ dataDir, policies: [policy], upstreams: { fx: { command: 'unused' } } });
    const ledger = new FileJobLedger(dataDir);
    const calls: Record<string, unknown>[] = [];
    // The reconciler passes on a 5 s interval: the test moves it on.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const gateway = new Gateway(config, loadPolicyFiles([policy]), {
      bus: new MemoryBus(),
      store: new MemoryStore(),
      approvalStore: new FileApprovalStore(dataDir),
      auditWriter: new ChainWriter(new FileAuditStore(dataDir)),
      clock: systemClock,
      upstreams: new Map([['fx', runningUpstream(calls)]]),
      ledger,
    }, silentLogger);
    await gateway.start();
    const context = { server: 'fx', tool: 'write', arguments: { path: '/tmp/retried' }, constraints: {}, wantsProgress: false };
    await ledger.deadLetter(deadLetter(DEAD, Date.now(), { context }));
    await ledger.requestRetry(DEAD, 'bob', Date.now());

    vi.advanceTimersByTime(5_000);
    await waitFor(() => calls.length === 1, 'the retry to run');
    await gateway.stop();

    const records = await auditOf(dataDir, 't');
    expect(records.filter((r) => r.jobId === DEAD).map((r) => r.type)).toEqual(['dlq.retry_started', 'dlq.retried']);
    const retried = records.find((r) => r.type === 'dlq.retried')!;
    // The call was running when the gateway stopped, and `write` is not idempotent: in doubt, and dead-lettered anew.
    expect(retried.data).toMatchObject({ requestedBy: 'bob', outcome: 'GH_ERR_EXECUTION_IN_DOUBT' });
    const retryJobId = String(retried.data.retryJobId);
    expect(records.filter((r) => r.jobId === retryJobId).map((r) => r.type)).toEqual(['job.submitted', 'job.decided', 'job.dispatched', 'job.failed']);
    const after = new FileJobLedger(dataDir);
    expect((await after.listDead()).map((d) => [d.jobId, d.code])).toEqual([[retryJobId, 'GH_ERR_EXECUTION_IN_DOUBT']]);
    expect((await after.getDead(retryJobId))?.context?.arguments).toEqual({ path: '/tmp/retried' });
    await after.close();
  });
});
