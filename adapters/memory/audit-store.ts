import { createReadStream, mkdirSync } from 'node:fs';
import { appendFile, open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { AuditStore } from '../../src/ports.ts';
import { GENESIS, type AuditRecord, type ChainHead } from '../../src/audit/record.ts';
import { GatewayError } from '../../src/errors.ts';
import { recordLine } from '../../src/audit/chain.ts';
import { withFileLock } from './file-lock.ts';

const TAIL_CHUNK = 64 * 1024;

/**
 * Audit chains as JSON Lines, one file per tenant under `<dataDir>/audit/`. Appends take a lock file and
 * compare the chain head first, so the gateway and the CLI in another process can both append without forking
 * the chain. The head is cached with the file size; only when another writer grew the file is the tail re-read.
 */
export class FileAuditStore implements AuditStore {
  private readonly dir: string;
  private readonly heads = new Map<string, { size: number; head: ChainHead }>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'audit');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  async head(tenant: string): Promise<ChainHead> {
    const path = this.filePath(tenant);
    const size = await fileSize(path);
    const cached = this.heads.get(tenant);
    if (cached && cached.size === size) return cached.head;
    const head = size === 0 ? GENESIS : await readHead(path, size);
    this.heads.set(tenant, { size, head });
    return head;
  }

  async append(tenant: string, expected: ChainHead, records: AuditRecord[]): Promise<{ ok: true } | { ok: false; head: ChainHead }> {
    const path = this.filePath(tenant);
    return withFileLock(`${path}.lock`, async () => {
      const head = await this.head(tenant);
      if (head.seq !== expected.seq || head.hash !== expected.hash) return { ok: false as const, head };
      if (records.length === 0) return { ok: true as const };
      const text = records.map(recordLine).join('\n') + '\n';
      await appendFile(path, text, { mode: 0o600 });
      const last = records[records.length - 1];
      this.heads.set(tenant, { size: await fileSize(path), head: { seq: last.seq, hash: last.hash } });
      return { ok: true as const };
    });
  }

  async *read(tenant: string, options: { fromSeq?: number } = {}): AsyncIterable<AuditRecord> {
    const path = this.filePath(tenant);
    if ((await fileSize(path)) === 0) return;
    const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line === '') continue;
      let record: AuditRecord;
      try {
        record = JSON.parse(line) as AuditRecord;
      } catch (err) {
        throw new GatewayError('GH_ERR_DATA_CORRUPT', `${path}:${lineNo} is not valid JSON`, { cause: err, data: { path, line: lineNo } });
      }
      if (record.seq >= (options.fromSeq ?? 0)) yield record;
    }
  }

  async tenants(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter((n) => n.endsWith('.jsonl')).map((n) => decodeURIComponent(n.slice(0, -6))).sort();
  }

  async close(): Promise<void> {
    this.heads.clear();
  }

  filePath(tenant: string): string {
    return join(this.dir, `${encodeURIComponent(tenant)}.jsonl`);
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Reads the last record of a chain file, growing the window until it holds a whole line. */
async function readHead(path: string, size: number): Promise<ChainHead> {
  const handle = await open(path, 'r');
  try {
    let window = Math.min(TAIL_CHUNK, size);
    for (;;) {
      const buffer = Buffer.alloc(window);
      await handle.read(buffer, 0, window, size - window);
      const text = buffer.toString('utf8');
      if (!text.endsWith('\n')) {
        throw new GatewayError('GH_ERR_DATA_CORRUPT', `${path} ends in a torn write (no final newline); inspect it and run \`gatehouse audit verify\``, {
          data: { path },
        });
      }
      const body = text.slice(0, -1);
      const start = body.lastIndexOf('\n');
      if (start >= 0 || window === size) {
        const line = body.slice(start + 1);
        try {
          const record = JSON.parse(line) as AuditRecord;
          return { seq: record.seq, hash: record.hash };
        } catch (err) {
          throw new GatewayError('GH_ERR_DATA_CORRUPT', `the last record of ${path} is not valid JSON`, { cause: err, data: { path } });
        }
      }
      window = Math.min(window * 2, size);
    }
  } finally {
    await handle.close();
  }
}
