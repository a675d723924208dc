import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { openAuditState } from '../../runtime/state.ts';
import type { AuditStore } from '../../ports.ts';
import { verifyChain, verifyStore, type VerifyReport } from '../../audit/verify.ts';
import { exportHeadLine, parseExport } from '../../audit/export.ts';
import { isGatewayError } from '../../errors.ts';
import { GENESIS, type AuditRecord } from '../../protocol/audit-record.ts';
import { flag, parseArgs, usage, type ParsedArgs } from '../args.ts';
import { stateConfig, STATE_FLAGS } from '../state.ts';

export const AUDIT_HELP = `Usage:
  gatehouse audit tail [-n N] [--follow] [--tenant T]
  gatehouse audit verify [--tenant T] [--file EXPORT]
  gatehouse audit export [--out FILE] [--tenant T]

  tail     prints the last N records (default 20) as JSON lines; --follow keeps printing new ones
  verify   recomputes every hash chain and reports the first broken link by sequence number, or a chain
           shorter than the head recorded apart from it (exit 1); a torn last write is reported, not an error;
           --file verifies an export offline against its head lines
  export   writes each chain as JSON lines to FILE (default stdout), each followed by its head line

  --config FILE / --data-dir DIR   where the audit trail is (as for approvals)
  --tenant T                       one tenant's chain (default: all)`;

export async function runAudit(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: [...STATE_FLAGS.values, 'tenant', 'out', 'file', 'lines'], booleans: ['follow'], aliases: { n: 'lines' } });
  const [action] = args.positionals;
  if (action === 'verify' && flag(args, 'file')) return verifyFile(flag(args, 'file')!);
  const config = stateConfig(args);
  const store = await openAuditState(config);
  try {
    return await runAuditAction(store, action, args, flag(args, 'tenant') ? [flag(args, 'tenant')!] : await store.tenants());
  } finally {
    await store.close();
  }
}

async function runAuditAction(store: AuditStore, action: string | undefined, args: ParsedArgs, tenants: string[]): Promise<number> {
  switch (action) {
    case 'tail':
      return tail(store, tenants, Number(flag(args, 'lines') ?? 20), args.flags.follow === true);
    case 'verify': {
      let ok = true;
      if (tenants.length === 0) console.log('no audit records yet');
      for (const tenant of tenants) {
        const report = await verifyStore(store, tenant);
        ok &&= report.ok;
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
        let head = GENESIS;
        for await (const record of store.read(tenant)) {
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
      throw usage(action ? `unknown action "${action}"` : 'missing an action: tail, verify or export');
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
async function verifyFile(file: string): Promise<number> {
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
  for (const [tenant, { records, head }] of chains) {
    let report: VerifyReport;
    if (!head) {
      report = { ...(await verifyChain(tenant, records)), ok: false, code: 'GH_ERR_AUDIT_TRUNCATED', cut: { reason: 'the export has no head line for it: it was cut at its end, or not written by `gatehouse audit export`' } };
    } else {
      report = await verifyChain(tenant, records, { recordedHead: { seq: head.seq, hash: head.hash } });
      const stored = head.recordedHead;
      if (report.ok && stored && stored.seq > head.seq) {
        report = { ...report, ok: false, code: 'GH_ERR_AUDIT_TRUNCATED', recordedHead: stored, cut: { reason: `the chain was already shorter than its recorded head (seq ${stored.seq}) when it was exported` } };
      }
    }
    ok &&= report.ok;
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
  if (report.tornTail) {
    lines.push(
      `  ends in a torn write of ${report.tornTail.bytes} bytes (${report.tornTail.digest}) after its last whole record: a crash or a full disk cut a write short, not an edit; ` +
        'the next write moves it aside and records audit.repaired',
    );
  }
  return lines.join('\n');
}
