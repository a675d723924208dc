import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { openAuditState } from '../../runtime/state.ts';
import type { AuditStore } from '../../ports.ts';
import { verifyChain, verifyStore, type VerifyReport } from '../../audit/verify.ts';
import { exportAnchorLine, exportHeadLine, parseExport } from '../../audit/export.ts';
import { isGatewayError } from '../../errors.ts';
import { GENESIS, type AuditRecord } from '../../protocol/audit-record.ts';
import { flag, parseArgs, usage, type ParsedArgs } from '../args.ts';
import { stateConfig, STATE_FLAGS } from '../state.ts';
import { auditKeyPath, auditSigningKey } from '../../runtime/audit-signing.ts';
import { CheckpointPublicKey } from '../../audit/checkpoint.ts';
import type { GatehouseConfig } from '../../config/schema.ts';
import { AuditQuery, outcomeOf, type AuditCall, type AuditFilter } from '../../audit/query.ts';
import { parseSince } from './policy/replay.ts';

export const AUDIT_HELP = `Usage:
  gatehouse audit tail [-n N] [--follow] [--tenant T]
  gatehouse audit verify [--tenant T] [--file EXPORT [--pubkey KEY]]
  gatehouse audit export [--out FILE] [--tenant T]
  gatehouse audit pubkey [--json]
  gatehouse audit query [--session S] [--principal P] [--tool GLOB] [--decision D] [--outcome O]
                        [--since T] [--until T] [--limit N] [--cursor C] [--tenant T] [--json]

  tail     prints the last N records (default 20) as JSON lines; --follow keeps printing new ones
  verify   recomputes every hash chain and reports the first broken link by sequence number, or a chain
           shorter than the head recorded apart from it (exit 1); a torn last write is reported, not an error;
           --file verifies an export offline against its head lines; every signed checkpoint is checked
           (with the data dir's key, audit.signingKey, or --pubkey), and records after the newest one are
           reported as not yet covered by a checkpoint; a chain whose oldest segments retention removed is
           verified from its signed anchor (<tenant>.anchor, or audit:<tenant>:anchor in Redis), which is reported
  export   writes each chain as JSON lines to FILE (default stdout), each followed by its head line (and,
           after retention, preceded by its anchor line)
  query    the calls (one per job), newest first: time, session, principal, tool, decision and rules,
           outcome (succeeded, failed, denied, cancelled, timeout, unknown, pending) and duration; --json
           prints { calls, next }: pass next as --cursor for the next page. --since/--until take an ISO
           date/time or a duration ago (30m, 24h, 7d); --limit defaults to 50 (at most 1000); --tenant
           defaults to the only tenant, else "default"
  pubkey   prints the public key checkpoints are signed with (PEM, after a line with its key id and base64),
           creating the key in the data dir when there is none yet; --json prints { keyId, base64, pem }

  --config FILE / --data-dir DIR   where the audit trail is (as for approvals)
  --tenant T                       one tenant's chain (default: all)
  --pubkey KEY                     a file holding the public key (as pubkey prints it), or the key itself`;

export async function runAudit(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'tenant', 'out', 'file', 'lines', 'pubkey', ...QUERY_FLAGS], booleans: ['follow', 'json'], aliases: { n: 'lines' } });
  const [action] = args.positionals;
  const pubkey = flag(args, 'pubkey') === undefined ? undefined : await readPublicKey(flag(args, 'pubkey')!);
  if (action === 'verify' && flag(args, 'file')) return verifyFile(flag(args, 'file')!, pubkey);
  const config = stateConfig(args, { audit: true });
  if (action === 'pubkey') return printPublicKey(config, args.flags.json === true);
  const key = action === 'verify' ? (pubkey ?? (await auditSigningKey(config, false))?.publicKey) : undefined;
  const store = await openAuditState(config);
  try {
    if (action === 'query') return await query(store, args);
    return await runAuditAction(store, action, args, flag(args, 'tenant') ? [flag(args, 'tenant')!] : await store.tenants(), key);
  } finally {
    await store.close();
  }
}

async function runAuditAction(store: AuditStore, action: string | undefined, args: ParsedArgs, tenants: string[], key: CheckpointPublicKey | undefined): Promise<number> {
  switch (action) {
    case 'tail':
      return tail(store, tenants, Number(flag(args, 'lines') ?? 20), args.flags.follow === true);
    case 'verify': {
      let ok = true;
      if (tenants.length === 0) console.log('no audit records yet');
      for (const tenant of tenants) {
        const report = await verifyStore(store, tenant, key);
        ok &&= report.ok && (report.checkpoints.checked || report.checkpoints.count === 0);
        console.log(describeReport(report));
      }
      return ok ? 0 : 1;
    }
    case 'export': {
      const out = flag(args, 'out') ? createWriteStream(flag(args, 'out')!) : process.stdout;
      const write = async (line: string) => {
        if (!out.write(line + '\n')) await once(out, 'drain');
      };
      for (const tenant of tenants) {
        // The head recorded before reading: records appended meanwhile only come after it.
        const recordedHead = await store.recordedHead(tenant);
        const anchor = await store.anchor?.(tenant);
        if (anchor) await write(exportAnchorLine(anchor));
        let head = anchor ? { seq: anchor.seq, hash: anchor.hash } : GENESIS;
        for await (const record of store.read(tenant)) {
          if (anchor && record.seq <= anchor.seq) continue;
          await write(JSON.stringify(record));
          head = { seq: record.seq, hash: record.hash };
        }
        await write(exportHeadLine({ tenant, ...head, ...(recordedHead ? { recordedHead } : {}) }));
      }
      if (out !== process.stdout) {
        out.end();
        await once(out, 'finish');
      }
      return 0;
    }
    default:
      throw usage(action ? `unknown action "${action}"` : 'missing an action: tail, verify, query, export or pubkey');
  }
}

const QUERY_FLAGS = ['session', 'principal', 'tool', 'decision', 'outcome', 'since', 'until', 'limit', 'cursor'];

async function query(store: AuditStore, args: ParsedArgs): Promise<number> {
  const now = Date.now();
  const time = (name: string) => (flag(args, name) === undefined ? undefined : parseSince(flag(args, name)!, now));
  const filter: AuditFilter = {};
  for (const name of ['session', 'principal', 'tool', 'decision'] as const) if (flag(args, name) !== undefined) filter[name] = flag(args, name);
  if (flag(args, 'outcome') !== undefined) filter.outcome = await usable(() => outcomeOf(flag(args, 'outcome')!));
  if (flag(args, 'since') !== undefined) filter.since = time('since');
  if (flag(args, 'until') !== undefined) filter.until = time('until');
  const tenants = await store.tenants();
  const tenant = flag(args, 'tenant') ?? (tenants.length === 1 ? tenants[0] : 'default');
  const limit = Number(flag(args, 'limit') ?? 50);
  const cursor = flag(args, 'cursor');
  const page = await usable(() => new AuditQuery(store).calls(tenant, filter, { limit, ...(cursor ? { cursor } : {}) }));
  if (args.flags.json === true) {
    console.log(JSON.stringify(page, null, 2));
    return 0;
  }
  if (page.calls.length === 0) console.log('no calls match');
  for (const call of page.calls) console.log(callLine(call));
  if (page.next) console.log(`more: --cursor ${page.next}`);
  return 0;
}

function callLine(call: AuditCall): string {
  const decision = call.decision ? `${call.decision}${call.ruleIds.length ? ` [${call.ruleIds.join(',')}]` : ''}` : '-';
  const duration = call.durationMs === undefined ? '-' : `${call.durationMs}ms`;
  return [new Date(call.at).toISOString(), call.session ?? '-', call.principal, call.tool ?? '-', decision, call.outcome, duration, call.jobId].join('  ');
}

/** A bad filter or cursor is bad usage (exit 2), not a failure. */
async function usable<T>(make: () => T | Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (err) {
    if (isGatewayError(err, 'GH_ERR_INVALID_REQUEST')) throw usage(err.message);
    throw err;
  }
}

async function tail(store: AuditStore, tenants: string[], n: number, follow: boolean): Promise<number> {
  if (!Number.isInteger(n) || n < 0) throw usage('-n needs a whole number');
  const seen = new Map<string, number>();
  const all: AuditRecord[] = [];
  for (const tenant of tenants) {
    for await (const record of store.read(tenant)) {
      all.push(record);
      seen.set(tenant, record.seq);
    }
  }
  all.sort((a, b) => a.at - b.at);
  for (const record of all.slice(Math.max(0, all.length - n))) console.log(JSON.stringify(record));
  while (follow) {
    await delay(500);
    for (const tenant of await store.tenants()) {
      for await (const record of store.read(tenant, { fromSeq: (seen.get(tenant) ?? 0) + 1 })) {
        console.log(JSON.stringify(record));
        seen.set(tenant, record.seq);
      }
    }
  }
  return 0;
}

/**
 * Verifies an export offline: records of several tenants may be interleaved; each chain is checked alone, against
 * its head line (the newest record exported) and the head its store recorded when it was exported.
 */
async function verifyFile(file: string, key: CheckpointPublicKey | undefined): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  let chains;
  try {
    chains = parseExport(await readFile(file, 'utf8'), file);
  } catch (err) {
    if (!isGatewayError(err, 'GH_ERR_DATA_CORRUPT')) throw err;
    console.log(`${err.message} [${err.code}]`);
    return 1;
  }
  let ok = true;
  for (const [tenant, { records, head, anchor }] of chains) {
    let report: VerifyReport;
    if (!head) {
      report = { ...(await verifyChain(tenant, records, anchor ? { anchor } : {})), ok: false, code: 'GH_ERR_AUDIT_TRUNCATED', cut: { reason: 'the export has no head line for it: it was cut at its end, or not written by `gatehouse audit export`' } };
    } else {
      report = await verifyChain(tenant, records, { recordedHead: { seq: head.seq, hash: head.hash }, ...(key ? { checkpointKey: key } : {}), ...(anchor ? { anchor } : {}) });
      const stored = head.recordedHead;
      const signed = report.checkpoints.last;
      if (report.ok && stored && stored.seq > head.seq) {
        report = { ...report, ok: false, code: 'GH_ERR_AUDIT_TRUNCATED', recordedHead: stored, cut: { reason: `the chain was already shorter than its recorded head (seq ${stored.seq}) when it was exported` } };
      } else if (report.ok && signed && head.seq < signed.seq) {
        report = { ...report, ok: false, code: 'GH_ERR_AUDIT_TRUNCATED', cut: { reason: `its head line (seq ${head.seq}) ends before seq ${signed.seq}, which a checkpoint in it signs` } };
      }
    }
    ok &&= report.ok && (report.checkpoints.checked || report.checkpoints.count === 0);
    console.log(describeReport(report, 'its head line'));
  }
  return ok ? 0 : 1;
}

/** One tenant's verdict, with both heads and any torn tail, and the code when it is not OK. */
function describeReport(report: VerifyReport, recordedAs = 'the head recorded apart from it'): string {
  const at = (head: { seq: number; hash: string } | undefined) => (head ? `seq ${head.seq} (${head.hash})` : 'none');
  const lines: string[] = [];
  if (report.ok) {
    lines.push(`tenant ${report.tenant}: OK, ${report.records} records, head ${at(report.head)}${report.recordedHead ? `; ${recordedAs}: ${at(report.recordedHead)}` : ''}`);
  } else if (report.code === 'GH_ERR_AUDIT_TRUNCATED') {
    lines.push(
      `tenant ${report.tenant}: SHORTER THAN ITS HEAD [${report.code}]: ${report.cut?.reason}. The ${report.records} records there verify, up to ${at(report.head)}; ${recordedAs}: ${at(report.recordedHead)}`,
    );
  } else {
    const where = `${report.brokenAt?.seq}${report.brokenAt?.line ? ` (line ${report.brokenAt.line})` : ''}`;
    lines.push(`tenant ${report.tenant}: BROKEN at seq ${where} [${report.code}]: ${report.brokenAt?.reason} (${report.records} records verified before it)`);
  }
  const { checkpoints } = report;
  if (checkpoints.count > 0 && !checkpoints.checked) {
    lines.push(`  ${checkpoints.count} signed checkpoints NOT CHECKED: no key (audit.signingKey, the data dir's secrets/audit-signing.key, or --pubkey)`);
  } else if (report.ok && checkpoints.last) {
    const { last } = checkpoints;
    lines.push(
      `  ${checkpoints.count} signed checkpoints verify (key ${last.keyId}); the newest signs seq ${last.seq} (${last.hash}) at ${new Date(last.at).toISOString()}` +
        (checkpoints.uncovered > 1 ? `; ${checkpoints.uncovered - 1} records after it are not yet covered by a checkpoint` : ''),
    );
  } else if (report.ok && checkpoints.checked) {
    lines.push(`  no signed checkpoint yet: its ${report.records} records are not yet covered by a checkpoint`);
  }
  if (report.anchor && report.ok) {
    lines.push(`  starts at seq ${report.anchor.seq + 1}, anchored by checkpoint seq ${report.anchor.seq} (${report.anchor.hash}): records before it were removed by retention`);
  }
  if (report.tornTail) {
    lines.push(
      `  ends in a torn write of ${report.tornTail.bytes} bytes (${report.tornTail.digest}) after its last whole record: a crash or a full disk cut a write short, not an edit; ` +
        'the next write moves it aside and records audit.repaired',
    );
  }
  return lines.join('\n');
}

/** `--pubkey`: a file holding the key (as `audit pubkey` prints it), or the key itself. */
async function readPublicKey(value: string): Promise<CheckpointPublicKey> {
  const { readFile } = await import('node:fs/promises');
  let text = value;
  try {
    text = await readFile(value, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENAMETOOLONG') throw err;
  }
  try {
    return CheckpointPublicKey.parse(text);
  } catch (err) {
    throw usage(`--pubkey: ${(err as Error).message}`);
  }
}

async function printPublicKey(config: GatehouseConfig, json: boolean): Promise<number> {
  const key = await auditSigningKey(config, true);
  if (!key) {
    console.error('no audit signing key: in distributed mode, checkpoints are signed only with audit.signingKey, which the config does not set');
    return 1;
  }
  const { keyId, base64, pem } = key.publicKey;
  if (json) console.log(JSON.stringify({ keyId, base64, pem }));
  else process.stdout.write(`# keyId ${keyId} base64 ${base64}${config.audit.signingKey ? '' : ` (${auditKeyPath(config.dataDir)})`}\n${pem}`);
  return 0;
}
