// The bounds the README promises on what Gatehouse keeps per session: 1,000 tools, 256 loop-breaker entries, and
// sessions.json written at most once a second (and read only when a session is first needed).
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { admit, type CallAdmission } from '../../src/session/admission.ts';
import type { SessionRecord } from '../../src/protocol/session-record.ts';
import { FileSessionFacts, SESSIONS_FILE } from '../../adapters/file/session-facts.ts';
import { writeDataFile } from '../../adapters/file/atomic-file.ts';

const call = (over: Partial<CallAdmission>): CallAdmission => ({ sessionKey: 's', tool: 'fs__read', toolCall: true, argsDigest: 'sha256:0', riskTags: [], approved: false, now: 1_000, repeats: [], budgets: [], ...over });

/** The session's record after these calls, each counted. */
function after(calls: CallAdmission[]): SessionRecord {
  let record: SessionRecord | undefined;
  for (const c of calls) {
    const { next, refusal } = admit([record], c, true);
    expect(refusal).toBeUndefined();
    record = next[0] ?? record;
  }
  return record!;
}

describe('what one session keeps, bounded', () => {
  it('keeps the first 1,000 tools of a session, and of a distinctTools budget; the calls past them still count', () => {
    const budget = { ruleId: 'spend', per: 'session' as const, distinctTools: 5_000 };
    const record = after(Array.from({ length: 1_005 }, (_, i) => call({ tool: `up__tool${i}`, budgets: [budget], now: 1_000 + i })));
    expect(record.calls).toBe(1_005);
    expect(record.tools).toHaveLength(1_000);
    expect(record.tools.at(-1)).toBe('up__tool999');
    expect(record.budgets.spend.tools).toHaveLength(1_000);
  });

  it('remembers 256 distinct calls for the loop breaker, forgetting first those whose window ends first', () => {
    const repeat = { ruleId: 'loop', limit: 3, windowMs: 60_000 };
    const record = after(Array.from({ length: 300 }, (_, i) => call({ argsDigest: `sha256:${String(i).padStart(16, '0')}`, repeats: [repeat], now: 1_000 + i })));
    const keys = Object.keys(record.repeats);
    expect(keys).toHaveLength(256);
    // The 44 oldest calls (their windows end first) are the ones forgotten.
    expect(keys.some((k) => k.endsWith(String(43).padStart(16, '0')))).toBe(false);
    expect(keys.some((k) => k.endsWith(String(44).padStart(16, '0')))).toBe(true);
  });
});

describe('sessions.json (embedded mode)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const clock = { now: () => 1_000 };
  const slot = [{ key: 's:1', ttlMs: 60_000 }];
  const count = (facts: FileSessionFacts) => facts.update(slot, ([c]) => ({ next: [{ ...(c ?? { id: 's:1', startedAt: 1, calls: 0, tools: [], riskTags: [], labels: [], approvals: 0, budgets: {}, repeats: {} }), calls: (c?.calls ?? 0) + 1 }], value: undefined }));
  const callsOnDisk = (dir: string) => (JSON.parse(readFileSync(join(dir, SESSIONS_FILE), 'utf8')) as { sessions: [string, { record: SessionRecord }][] }).sessions[0][1].record.calls;

  it('is written at most once a second after changes, whatever their number', async () => {
    vi.useFakeTimers();
    const dir = mkdtempSync(join(tmpdir(), 'gh-sessions-'));
    const facts = new FileSessionFacts(dir, clock);
    for (let i = 0; i < 50; i++) await count(facts);
    vi.advanceTimersByTime(999);
    expect(existsSync(join(dir, SESSIONS_FILE))).toBe(false);
    vi.advanceTimersByTime(1);
    expect(callsOnDisk(dir)).toBe(50);
    for (let i = 0; i < 50; i++) await count(facts);
    vi.advanceTimersByTime(999);
    expect(callsOnDisk(dir)).toBe(50);
    vi.advanceTimersByTime(1);
    expect(callsOnDisk(dir)).toBe(100);
    await facts.close();
  });

  it('is read when a session is first needed, not when the gateway starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-sessions-'));
    const facts = new FileSessionFacts(dir, clock);
    // Written after the adapter was made (as if by the run before this one): a read at start would have missed it.
    writeDataFile(dir, SESSIONS_FILE, JSON.stringify({ version: 1, sessions: [['s:1', { record: { id: 's:1', startedAt: 1, calls: 7, tools: [], riskTags: [], labels: [], approvals: 0, budgets: {}, repeats: {} }, expiresAt: 60_000 }]] }));
    expect((await facts.read(['s:1']))[0]?.calls).toBe(7);
    await facts.close();
  });
});
