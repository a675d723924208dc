import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { openAuditState } from '../../runtime/state.ts';
import type { AuditStore } from '../../ports.ts';
import { verifyChain } from '../../audit/verify.ts';
import type { AuditRecord } from '../../audit/record.ts';
import { flag, parseArgs, usage, type ParsedArgs } from '../args.ts';
import { stateConfig, STATE_FLAGS } from '../state.ts';

export const AUDIT_HELP = `Usage:
  gatehouse audit tail [-n N] [--follow] [--tenant T]
  gatehouse audit verify [--tenant T] [--file EXPORT]
  gatehouse audit export [--out FILE] [--tenant T]

  tail     prints the last N records (default 20) as JSON lines; --follow keeps printing new ones
  verify   recomputes every hash chain and reports the first broken link by sequence number (exit 1);
           --file verifies an exported chain offline
  export   writes the chain as JSON lines to FILE (default stdout)

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
        const report = await verifyChain(tenant, store.read(tenant));
        ok &&= report.ok;
        console.log(
          report.ok
            ? `tenant ${tenant}: OK, ${report.records} records, head ${report.head?.hash}`
            : `tenant ${tenant}: BROKEN at seq ${report.brokenAt?.seq}${report.brokenAt?.line ? ` (line ${report.brokenAt.line})` : ''}: ${report.brokenAt?.reason} (${report.records} records verified before it)`,
        );
      }
      return ok ? 0 : 1;
    }
    case 'export': {
      const out = flag(args, 'out') ? createWriteStream(flag(args, 'out')!) : process.stdout;
      for (const tenant of tenants) for await (const record of store.read(tenant)) if (!out.write(JSON.stringify(record) + '\n')) await once(out, 'drain');
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

/** Verifies an export offline: records of several tenants may be interleaved; each chain is checked alone. */
async function verifyFile(file: string): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const byTenant = new Map<string, AuditRecord[]>();
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim());
  for (const [i, line] of lines.entries()) {
    let record: AuditRecord;
    try {
      record = JSON.parse(line) as AuditRecord;
    } catch {
      console.log(`${file}:${i + 1}: not valid JSON`);
      return 1;
    }
    const list = byTenant.get(record.tenant) ?? [];
    list.push(record);
    byTenant.set(record.tenant, list);
  }
  let ok = true;
  for (const [tenant, records] of byTenant) {
    const report = await verifyChain(tenant, records);
    ok &&= report.ok;
    console.log(report.ok ? `tenant ${tenant}: OK, ${report.records} records` : `tenant ${tenant}: BROKEN at seq ${report.brokenAt?.seq}: ${report.brokenAt?.reason}`);
  }
  return ok ? 0 : 1;
}
