import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import { chainEvents } from '../../src/protocol/audit-chain.ts';
import { GENESIS, type AuditEvent, type ChainHead } from '../../src/protocol/audit-record.ts';
import { ulid } from '../../src/protocol/ulid.ts';
import type { AuditCall, AuditFilter, AuditQueries } from '../../src/audit/query.ts';
import type { ChainWriter } from '../../src/audit/chain-writer.ts';
import type { AuditStore } from '../../src/ports.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

/** A generated call: what it was, and the records the gateway writes for it. */
export interface GeneratedCall {
  jobId: string;
  at: number;
  session: string;
  principal: string;
  tool: string;
  decision: string;
  outcome: 'succeeded' | 'failed' | 'denied' | 'cancelled' | 'timeout' | 'pending';
}

const TOOLS = ['files__read_text_file', 'files__write_file', 'git__status', 'web__fetch'];
const OUTCOMES = ['succeeded', 'succeeded', 'failed', 'cancelled', 'timeout', 'pending'] as const;

/** The call number `i` of a generated log: a deterministic mix of sessions, principals, tools, decisions and outcomes. */
export function generatedCall(i: number, start: number): GeneratedCall {
  const tool = TOOLS[i % TOOLS.length];
  const denied = i % 7 === 3;
  const decision = denied ? 'deny' : tool === 'files__write_file' ? 'require_approval' : 'allow';
  const at = start + i * 10;
  return {
    jobId: ulidAt(at, i),
    at,
    session: `s${i % 13}`,
    principal: i % 3 === 0 ? 'alice' : 'agent',
    tool,
    decision,
    outcome: denied ? 'denied' : OUTCOMES[i % OUTCOMES.length],
  };
}

/** The records of one call, as the job steps and the scheduler write them. */
export function callEvents(call: GeneratedCall, tenant = 'default'): AuditEvent[] {
  const { jobId, at } = call;
  const server = call.tool.split('__')[0];
  const events: AuditEvent[] = [
    { tenant, at, type: 'job.submitted', actor: call.principal, jobId, data: { topic: `job.mcp.${server}`, server, tool: call.tool, argsDigest: 'sha256:00', session: call.session } },
    { tenant, at, type: 'job.decided', actor: 'kernel', jobId, data: { effect: call.decision, ruleIds: [`rule-${call.decision}`], policySnapshot: 'sha256:ab', input: { tenant, principal: call.principal, server, tool: call.tool, now: at } } },
  ];
  if (call.decision === 'deny') return [...events, { tenant, at: at + 1, type: 'job.denied', actor: 'kernel', jobId, data: { code: 'GH_ERR_POLICY_DENIED' } }];
  if (call.decision === 'require_approval') events.push({ tenant, at: at + 1, type: 'job.approval_required', actor: 'kernel', jobId, data: { approvalId: `ap-${jobId}` } });
  if (call.outcome === 'pending') return events;
  events.push({ tenant, at: at + 2, type: 'job.dispatched', actor: 'scheduler', jobId, data: {} });
  events.push({ tenant, at: at + 5, type: `job.${call.outcome}`, actor: 'executor', jobId, data: {} });
  return events;
}

/** Writes `count` generated calls into a real file chain, in batches (as the trail's group commit does). */
export async function writeGeneratedLog(dataDir: string, count: number, options: { start?: number; tenant?: string; batch?: number; interleave?: boolean; sessionOf?: (i: number) => string } = {}): Promise<GeneratedCall[]> {
  const start = options.start ?? Date.UTC(2026, 0, 1);
  const tenant = options.tenant ?? 'default';
  const store = new FileAuditStore(dataDir, { fsync: 'off' });
  const calls: GeneratedCall[] = [];
  let head: ChainHead = GENESIS;
  let pending: AuditEvent[] = [];
  const pendingTails: AuditEvent[][] = [];
  const flush = async () => {
    const records = chainEvents(head, pending);
    await store.append(tenant, head, records);
    head = { seq: records[records.length - 1].seq, hash: records[records.length - 1].hash };
    pending = [];
  };
  for (let i = 0; i < count; i++) {
    const call = generatedCall(i, start);
    if (options.sessionOf) call.session = options.sessionOf(i);
    calls.push(call);
    const events = callEvents(call, tenant);
    // Interleaved like concurrent calls: the outcome of one lands after the next one's submission.
    pending.push(...(options.interleave === false ? events : events.slice(0, 2)));
    if (options.interleave !== false) pendingTails.push(events.slice(2));
    if (options.interleave !== false && pendingTails.length > 1) pending.push(...pendingTails.shift()!);
    if (pending.length >= (options.batch ?? 64)) await flush();
  }
  if (options.interleave !== false) for (const tail of pendingTails.splice(0)) pending.push(...tail);
  if (pending.length > 0) await flush();
  await store.close();
  return calls;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID made at `at` (so the job lookup's time bound holds), unique by `i`. */
function ulidAt(at: number, i: number): string {
  let time = '';
  for (let t = at, k = 0; k < 10; k++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  return time + ulid().slice(10, 20) + String(i).padStart(6, '0').replace(/\d/g, (d) => CROCKFORD[Number(d)]);
}

/** Every page of a query, following `next`, as one list. */
export async function everyPage(query: AuditQueries, filter: AuditFilter, limit: number, tenant = 'default'): Promise<AuditCall[]> {
  const all: AuditCall[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1_000; pages++) {
    const page = await query.calls(tenant, filter, { limit, ...(cursor ? { cursor } : {}) });
    all.push(...page.calls);
    if (!page.next) return all;
    cursor = page.next;
  }
  throw new Error('the pages never ended');
}

/** Writes calls `from`…`to - 1` of the generated log through a gateway's writer, 4 calls a batch. */
export async function writeCalls(writer: ChainWriter, from: number, to: number, start: number): Promise<GeneratedCall[]> {
  const calls: GeneratedCall[] = [];
  for (let i = from; i < to; i += 4) {
    const batch = Array.from({ length: Math.min(4, to - i) }, (_, k) => generatedCall(i + k, start));
    calls.push(...batch);
    await writer.write(new Map([['default', batch.flatMap((c) => callEvents(c))]]));
  }
  return calls;
}

/** The records of the `default` chain, from `fromSeq` on. */
export async function readChain(store: Pick<AuditStore, 'read'>, fromSeq?: number): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of store.read('default', fromSeq === undefined ? {} : { fromSeq })) out.push(r);
  return out;
}
