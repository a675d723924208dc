import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PinStore, ToolPin } from '../../src/ports.ts';
import { GatewayError } from '../../src/errors.ts';
import { writeDataFile } from './atomic-file.ts';
import { withFileLock } from './file-lock.ts';

export const PINS_FILE = 'pins.json';

const keyOf = (server: string, tool: string): string => `${server}\u0000${tool}`;

/**
 * The pinned tool definitions of a data dir, in `pins.json`: one JSON object, written whole through a temporary
 * file and a rename under a lock, so the gateway and `gatehouse tools accept` never lose each other's writes.
 * Every read goes to the file: it is small, and read on a listing only while a tool is quarantined.
 */
export class FilePinStore implements PinStore {
  private readonly file: string;

  constructor(private readonly dataDir: string) {
    this.file = join(dataDir, PINS_FILE);
  }

  async list(): Promise<ToolPin[]> {
    return [...this.read().values()];
  }

  async get(server: string, tool: string): Promise<ToolPin | undefined> {
    return this.read().get(keyOf(server, tool));
  }

  put(pins: readonly ToolPin[]): Promise<void> {
    if (pins.length === 0) return Promise.resolve();
    mkdirSync(this.dataDir, { recursive: true });
    return withFileLock(`${this.file}.lock`, async () => {
      const all = this.read();
      for (const pin of pins) all.set(keyOf(pin.server, pin.tool), pin);
      const sorted = [...all.values()].sort((a, b) => (keyOf(a.server, a.tool) < keyOf(b.server, b.tool) ? -1 : 1));
      writeDataFile(this.dataDir, PINS_FILE, `${JSON.stringify({ version: 1, pins: sorted }, null, 1)}\n`);
    });
  }

  async close(): Promise<void> {
    // Nothing is held open between reads.
  }

  private read(): Map<string, ToolPin> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `${this.file}: cannot be read: ${(err as Error).message}`, { cause: err });
    }
    let parsed: { version?: unknown; pins?: unknown };
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `${this.file}: not JSON (${(err as Error).message})`, { cause: err });
    }
    if (parsed?.version !== 1 || !Array.isArray(parsed.pins) || !parsed.pins.every(isPin)) {
      throw new GatewayError('GH_ERR_DATA_CORRUPT', `${this.file}: not a pins file (version 1, pins: [{ server, tool, digest, definition }])`);
    }
    return new Map((parsed.pins as ToolPin[]).map((p) => [keyOf(p.server, p.tool), p]));
  }
}

function isPin(value: unknown): value is ToolPin {
  const p = value as ToolPin;
  return typeof p === 'object' && p !== null && typeof p.server === 'string' && typeof p.tool === 'string' && typeof p.digest === 'string' && typeof p.definition === 'object' && p.definition !== null;
}
