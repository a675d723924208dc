import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { FileApprovalStore } from '../../adapters/file/approval-store.ts';
import { FileAuditStore } from '../../adapters/file/audit-store.ts';
import type { Clock } from '../../src/ports.ts';
import { runBusContract } from './bus.contract.ts';
import { runStoreContract } from './store.contract.ts';
import { runApprovalStoreContract } from './approval-store.contract.ts';
import { runAuditStoreContract } from './audit-store.contract.ts';
import { runClockContract } from './clock.contract.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { FileJobLedger } from '../../adapters/file/job-ledger.ts';
import { runJobLedgerContract } from './job-ledger.contract.ts';
import { FileSessionFacts } from '../../adapters/file/session-facts.ts';
import { runSessionFactsContract } from './session-facts.contract.ts';

let now = 1_000;
const clock: Clock = { now: () => now, sleep: async () => undefined };

runBusContract('memory', () => new MemoryBus());
runStoreContract('memory', () => new MemoryStore(clock), async (ms) => {
  now += ms;
});

let sessionsDir = '';
runSessionFactsContract(
  'file (embedded)',
  () => new FileSessionFacts((sessionsDir = mkdtempSync(join(tmpdir(), 'gh-sessions-'))), clock),
  async (ms) => {
    now += ms;
  },
  () => new FileSessionFacts(sessionsDir, clock),
  { replicas: false },
);

let approvalsDir = '';
runApprovalStoreContract(
  'file (embedded)',
  () => new FileApprovalStore((approvalsDir = mkdtempSync(join(tmpdir(), 'gh-approvals-')))),
  () => new FileApprovalStore(approvalsDir),
);

let auditDir = '';
runAuditStoreContract(
  'file (embedded)',
  () => new FileAuditStore((auditDir = mkdtempSync(join(tmpdir(), 'gh-audit-')))),
  () => new FileAuditStore(auditDir),
  async (tenant, n) => cutNewestLines(join(auditDir, 'audit', `${tenant}.jsonl`), n),
);

runClockContract('system', systemClock);

runJobLedgerContract('file (embedded)', async () => { const dir = mkdtempSync(join(tmpdir(), 'gh-ledger-')); return { ledger: new FileJobLedger(dir, clock), reopen: () => new FileJobLedger(dir, clock) }; }, async (ms) => void (now += ms));

/** Removes the last `n` lines of a file, as `head -n -N` and a rename would. */
function cutNewestLines(path: string, n: number): void {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  writeFileSync(path, lines.slice(0, lines.length - n).map((l) => l + '\n').join(''));
}
