import { openDeadLetterState } from '../../runtime/state.ts';
import type { DeadLetter } from '../../ports.ts';
import { redactArguments } from '../../enforcement/redact.ts';
import { flag, parseArgs, usage } from '../args.ts';
import { localUser, stateConfig, STATE_FLAGS } from '../state.ts';

export const DLQ_HELP = `Usage:
  gatehouse dlq list [--json]
  gatehouse dlq show ID [--json]
  gatehouse dlq retry ID [--as NAME]
  gatehouse dlq drop ID [--as NAME]

The dead-letter queue: jobs the scheduler ended on an infrastructure failure (no live worker, a worker or
replica that died mid-call, the bus refusing the job, a result that never came, a gateway stopping), kept with
their arguments so that they can be run again.
Works on the state of running gateways (another process is fine).
  --config FILE     the gateway's config (default ./gatehouse.yaml when present); distributed mode reads Redis
  --data-dir DIR    the data dir directly (default for wrap: ~/.gatehouse)
  --as NAME         who retries or drops, recorded in the audit trail (default: your user name)

retry queues the job for a running gateway: within a few seconds its leader runs the call again as its caller,
as a new job decided under the current policy, and removes the entry once that ended. The original client is
gone, so the outcome is only audited (dlq.retried, with the new job's id). Without a running gateway the retry
waits. A job whose tool is not idempotent may have run already: retry it only once you know it did not.
Arguments are shown redacted, as the policy redacts them in the audit trail.`;

export async function runDlq(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'as'], booleans: ['json'] });
  const [action, id] = args.positionals;
  if (!action) throw usage('missing an action: list, show, retry or drop');
  if (!['list', 'show', 'retry', 'drop'].includes(action)) throw usage(`unknown action "${action}"`);
  if (action !== 'list' && !id) throw usage('missing the job ID');
  const state = await openDeadLetterState(stateConfig(args));
  const { ledger, audit } = state;
  const actor = flag(args, 'as') ?? localUser();
  try {
    if (action === 'list') {
      const entries = await ledger.listDead();
      if (args.flags.json) console.log(JSON.stringify(entries.map(view), null, 2));
      else if (entries.length === 0) console.log('the dead-letter queue is empty');
      else for (const e of entries) console.log(summary(e));
      return 0;
    }
    const entry = await ledger.getDead(id!);
    if (!entry) {
      console.error(`gatehouse dlq: no dead job ${id}`);
      return 1;
    }
    switch (action) {
      case 'show':
        console.log(args.flags.json ? JSON.stringify(view(entry), null, 2) : details(entry));
        return 0;
      case 'retry': {
        if (!entry.context) {
          console.error(`gatehouse dlq: ${entry.jobId} cannot be retried: its context (the call's arguments) was gone when it died. Drop it.`);
          return 1;
        }
        if (entry.retry?.takenBy) {
          console.error(`gatehouse dlq: ${entry.jobId} is being retried by ${entry.retry.takenBy} since ${iso(entry.retry.takenAt)}; if that gateway stopped, see the audit trail before you drop it`);
          return 1;
        }
        const at = Date.now();
        const now = await ledger.requestRetry(entry.jobId, actor, at);
        if (!now) {
          console.error(`gatehouse dlq: no dead job ${id}`);
          return 1;
        }
        if (now.retry?.requestedAt !== at || now.retry.requestedBy !== actor) {
          console.log(`${entry.jobId} is already queued for retry (asked by ${now.retry?.requestedBy} at ${iso(now.retry?.requestedAt)})`);
          return 0;
        }
        audit.record({ tenant: entry.tenant, at, type: 'dlq.retry_requested', actor, jobId: entry.jobId, data: { code: entry.code, server: entry.server, tool: entry.tool } });
        console.log(`${entry.jobId} is queued for retry: a running gateway runs it again as ${entry.principal} under the current policy, and records the outcome in the audit trail (dlq.retried)`);
        return 0;
      }
      default: {
        if (!(await ledger.removeDead(entry.jobId))) {
          console.error(`gatehouse dlq: no dead job ${id}`);
          return 1;
        }
        audit.record({ tenant: entry.tenant, at: Date.now(), type: 'dlq.dropped', actor, jobId: entry.jobId, data: { code: entry.code, server: entry.server, tool: entry.tool } });
        console.log(`${entry.jobId} is dropped from the dead-letter queue${entry.retry?.takenBy ? ` (the retry ${entry.retry.takenBy} runs still ends as it ends)` : ''}`);
        return 0;
      }
    }
  } finally {
    await state.close();
  }
}


/** What the CLI shows of an entry: the arguments redacted (by the policy's rules and every secret-looking key), never the context itself. */
function view(entry: DeadLetter): Record<string, unknown> {
  const { context, ...rest } = entry;
  return { ...rest, retryable: context !== undefined, ...(context ? { arguments: redactArguments(context.arguments, context.constraints.redact?.args) } : {}) };
}

function status(e: DeadLetter): string {
  if (!e.retry) return 'dead';
  return e.retry.takenBy ? `retrying on ${e.retry.takenBy}` : 'retry queued';
}

function summary(e: DeadLetter): string {
  return `${e.jobId}  ${e.code}  ${e.server}/${e.tool}  by ${e.principal} (tenant ${e.tenant})  ${iso(e.at)}  ${status(e)}`;
}

function details(e: DeadLetter): string {
  const v = view(e);
  return [
    `job        ${e.jobId}`,
    `state      ${status(e)}`,
    `reason     ${e.code}: ${e.message}`,
    `tool       ${e.tool} (upstream ${e.server}, pool ${e.pool})`,
    `caller     ${e.principal} (tenant ${e.tenant})`,
    `replica    ${e.replica}`,
    `died       ${iso(e.at)}`,
    `arguments  ${e.context ? JSON.stringify(v.arguments) : '(gone: it cannot be retried)'}`,
    ...(e.retry ? [`retry      asked by ${e.retry.requestedBy} at ${iso(e.retry.requestedAt)}${e.retry.takenBy ? `, taken by ${e.retry.takenBy} at ${iso(e.retry.takenAt)}` : ''}`] : []),
  ].join('\n');
}

const iso = (at: number | undefined): string => (at === undefined ? '?' : new Date(at).toISOString());
