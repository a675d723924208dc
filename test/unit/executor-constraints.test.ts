// Defence in depth: the gateway refuses a call its argument constraints refuse before anyone is asked, and the
// executor (in-process, or a worker in distributed mode, which never saw that check) refuses it again on its own,
// from the constraints the job's context carries, before the upstream sees the call.
import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { Executor } from '../../src/scheduler/executor.ts';
import { CAP_PROTOCOL_VERSION, contextPtr, JobPriority, JobStatus, Subjects, type JobResult } from '../../src/protocol/cap.ts';
import type { JobContext } from '../../src/protocol/job-context.ts';
import type { Constraints } from '../../src/protocol/constraints.ts';
import type { Upstream } from '../../src/ports.ts';

const clock = { now: () => 0, sleep: async () => undefined };

async function run(args: Record<string, unknown>, constraints: Constraints, url?: string): Promise<{ result: JobResult; ran: number }> {
  const bus = new MemoryBus();
  const store = new MemoryStore(clock);
  let ran = 0;
  const upstream = { name: 'up', ...(url ? { url } : {}), state: 'ready', request: async () => (ran++, { content: [] }) } as unknown as Upstream;
  const executor = new Executor(bus, store, clock, 'worker-1', (name) => (name === 'up' ? upstream : undefined));
  executor.serve('up');
  const result = new Promise<JobResult>((resolve) => bus.subscribe(Subjects.result, (p) => void (p.payload.kind === 'jobResult' && resolve(p.payload.jobResult))));
  const context: JobContext = { server: 'up', tool: 't', arguments: args, constraints, wantsProgress: false };
  await store.set(contextPtr('J1'), context);
  const jobRequest = { jobId: 'J1', topic: 'mcp.up.t', priority: JobPriority.INTERACTIVE, contextPtr: contextPtr('J1'), env: {}, tenantId: 't', principalId: 'p', labels: {} };
  await bus.publish(Subjects.pool('up'), { traceId: 'J1', senderId: 'gw', createdAt: 0, protocolVersion: CAP_PROTOCOL_VERSION, payload: { kind: 'jobRequest', jobRequest } as never });
  const done = await result;
  executor.stop();
  return { result: done, ran };
}

describe('the executor enforces argument constraints on its own', () => {
  it.each([
    ['a path outside', { path: '/etc/passwd' }, { paths: [{ ruleId: 'ws', allow: ['/ws/**'] }] }, undefined, 'GH_ERR_PATH_DENIED'],
    ['a URL outside', { url: 'https://evil.example.net/' }, { egress: [{ ruleId: 'net', allowHosts: ['api.example.com'] }] }, undefined, 'GH_ERR_EGRESS_DENIED'],
    ["the upstream's own URL", {}, { egress: [{ ruleId: 'net', allowHosts: ['api.example.com'] }] }, 'https://user:secret@mcp.internal/x', 'GH_ERR_EGRESS_DENIED'],
    ['too many bytes', { note: 'x'.repeat(100) }, { maxArgBytes: 10 }, undefined, 'GH_ERR_ARGS_TOO_LARGE'],
  ])('refuses %s before the upstream sees it', async (_, args, constraints, url, code) => {
    const { result, ran } = await run(args, constraints as Constraints, url);
    expect(result).toMatchObject({ status: JobStatus.DENIED, errorCode: code });
    expect(ran).toBe(0);
  });

  it('runs a call its constraints admit', async () => {
    const { result, ran } = await run({ path: '/ws/a' }, { paths: [{ ruleId: 'ws', allow: ['/ws/**'] }] });
    expect(result.status).toBe(JobStatus.SUCCEEDED);
    expect(ran).toBe(1);
  });
});
