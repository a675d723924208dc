import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';

/**
 * Where audit events go that the trail could not write by shutdown: `<dataDir>/audit-unwritten/<time>-<pid>.jsonl`,
 * one event per line (unchained: they were never given a place in the chain), mode 0600. Beside the chains, not
 * inside `audit/`, which may be the very thing that fails. Resolves to the file's path.
 */
export function spillToDataDir(dataDir: string): (events: readonly AuditEvent[]) => Promise<string> {
  return async (events) => {
    const dir = join(dataDir, 'audit-unwritten');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.jsonl`);
    await writeFile(file, events.map((event) => JSON.stringify(event)).join('\n') + '\n', { mode: 0o600, flag: 'wx' });
    return file;
  };
}
