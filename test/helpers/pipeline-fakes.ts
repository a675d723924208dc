import type { Clock, Store, Upstream } from '../../src/ports.ts';
import type { Decision, DecisionInput } from '../../src/kernel/decision.ts';
import type { Kernel } from '../../src/kernel/kernel.ts';
import type { ApprovalService } from '../../src/approvals/service.ts';
import type { AuditTrail } from '../../src/audit/trail.ts';
import type { Scheduler } from '../../src/scheduler/scheduler.ts';
import type { JobTracker } from '../../src/scheduler/job-tracker.ts';
import { CallPipeline } from '../../src/call/pipeline.ts';
import type { SessionTracker } from '../../src/session/session-tracker.ts';
import type { ShadowPolicies } from '../../src/kernel/shadow.ts';
import { silentLogger } from '../../src/log.ts';
import type { CatalogEntry, ToolCatalog, ToolFacts } from '../../src/call/catalog.ts';
import type { CallToolResult } from '../../src/protocol/mcp.ts';

/** An upstream that is always ready and answers every tools/call with `answer(arguments)`. */
export function fakeUpstream(name: string, answer: (args: Record<string, unknown>) => CallToolResult, extra: { url?: string } = {}): Upstream {
  return {
    name,
    ...extra,
    state: 'ready',
    serverCapabilities: {},
    start: async () => undefined,
    notify: async () => undefined,
    close: async () => undefined,
    request: async (_method: string, params: Record<string, unknown> | undefined) => answer(params!.arguments as Record<string, unknown>),
  } as unknown as Upstream;
}

/** The catalog entry of tool `tool` on upstream `server`, exposed as `<server>__<tool>`, with an open schema. */
export function fakeEntry(server: string, tool: string, facts: ToolFacts = { annotations: {}, riskTags: [], labels: {} }): CatalogEntry {
  const name = `${server}__${tool}`;
  return {
    name,
    id: name,
    server,
    tool: { name: tool, inputSchema: { type: 'object' } },
    exposed: { name, inputSchema: { type: 'object' } },
    digest: 'sha256:tool',
    facts,
    check: () => undefined,
  } as unknown as CatalogEntry;
}

/**
 * A call pipeline over one catalog entry, deciding with `decide` (or a real `kernel`), running jobs through the
 * given scheduler, with the session tracker when one is given.
 */
export function fakePipeline(parts: { entry: CatalogEntry; decide?: (input: DecisionInput) => Decision; kernel?: Kernel; sessions?: SessionTracker; shadows?: ShadowPolicies; scheduler: Scheduler; store: Store; jobs?: JobTracker; audit: AuditTrail; clock: Clock }): CallPipeline {
  // The job tracker is the scheduler's (the scheduler owns every transition); callers may still pass theirs.
  const { entry, decide, kernel, jobs: _jobs, ...rest } = parts;
  return new CallPipeline({
    ...rest,
    catalog: { resolve: (name: string) => (name === entry.name ? entry : undefined), entries: () => [entry] } as unknown as ToolCatalog,
    kernel: kernel ?? ({ decide } as unknown as Kernel),
    approvals: {} as ApprovalService,
    log: silentLogger,
    options: { holdBudgetMs: 0, holdProgressEveryMs: 1_000, upstreamTimeoutMs: () => 5_000, placement: (server) => ({ pool: server, remote: false }), approvalHint: () => '', decisionBudgetMs: 50 },
  });
}
