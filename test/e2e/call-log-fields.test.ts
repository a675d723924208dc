import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import type { Logger } from '../../src/log.ts';
import { recordingLogger } from '../helpers/capturing-log.ts';
import type { Clock } from '../../src/ports.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { connectHttp, startHarness, type Harness } from '../helpers/gateway-harness.ts';

const harnesses: Harness[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});


/** A clock on which every reading is a second after the last: any decision takes longer than its budget. */
const racingClock = (): Clock => {
  let skew = 0;
  return { now: () => Date.now() + (skew += 1_000), sleep: (ms, signal) => systemClock.sleep(ms, signal) };
};

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('log lines about a call', () => {
  it('carry the job id, the session id and the trace id', async () => {
    const log = recordingLogger();
    const { lines } = log;
    const h = await startHarness({ kernel: { decisionBudget: 50, watchPolicies: false } }, { log, clock: racingClock() });
    harnesses.push(h);
    const client = await connectHttp(h.url);
    clients.push(client);
    const result = (await client.callTool({ name: 'fx__echo', arguments: { text: 'a' }, _meta: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` } })) as { isError?: boolean; _meta?: Record<string, unknown> };
    expect(result.isError).toBe(true);
    const sessionId = (client.transport as { sessionId?: string } | undefined)?.sessionId;
    expect(sessionId).toBeTruthy();
    const line = lines.find((l) => l.msg.startsWith('the kernel could not decide'));
    expect(line?.fields).toMatchObject({ jobId: (result._meta?.['gatehouse/job'] as { jobId?: string } | undefined)?.jobId ?? expect.stringMatching(/^[0-9A-Z]{26}$/), sessionId, traceId: TRACE_ID });
  });

  it('from the approval service too: a call whose rules leave nobody to approve it is logged with its job, session and trace', async () => {
    const log = recordingLogger();
    const { lines } = log;
    const dir = mkdtempSync(join(tmpdir(), 'gh-log-fields-'));
    // One approver and a quorum of two: the approval is created, and the service warns that nobody can grant it.
    writeFileSync(join(dir, 'policy.yaml'), 'version: 2\ndefault: allow\nrules:\n  - { id: w, match: { tools: [fx__write] }, effect: require_approval, approval: { approvers: [bob], quorum: 2 } }\n');
    const h = await startHarness({ policies: [dir] }, { log });
    harnesses.push(h);
    const client = await connectHttp(h.url);
    clients.push(client);
    const result = (await client.callTool({ name: 'fx__write', arguments: { key: 'k', value: 'v' }, _meta: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` } })) as { _meta?: Record<string, unknown> };
    const approvalId = (result._meta?.['gatehouse/approval'] as { id?: string } | undefined)?.id;
    expect(approvalId).toMatch(/^apr_/);
    const sessionId = (client.transport as { sessionId?: string } | undefined)?.sessionId;
    const line = lines.find((l) => l.msg.startsWith(`approval ${approvalId}:`));
    expect(line?.level).toBe('warn');
    expect(line?.fields).toMatchObject({ jobId: expect.stringMatching(/^[0-9A-Z]{26}$/), sessionId, traceId: TRACE_ID, approvalId });
  });
});
