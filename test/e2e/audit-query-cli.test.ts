import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatehouse } from '../helpers/cli.ts';
import { writeGeneratedLog, type GeneratedCall } from '../helpers/audit-calls.ts';

let dir: string;
let calls: GeneratedCall[];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-audit-query-cli-'));
  calls = await writeGeneratedLog(dir, 60);
});

describe('gatehouse audit query', () => {
  it('prints one line per call, newest first, with a cursor to the next page', async () => {
    const { code, stdout } = await gatehouse(['audit', 'query', '--data-dir', dir, '--session', 's2', '--limit', '2']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    const want = calls.filter((c) => c.session === 's2').reverse();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(want[0].jobId);
    expect(lines[0]).toContain(`${new Date(want[0].at).toISOString()}  s2  ${want[0].principal}  ${want[0].tool}  ${want[0].decision} [rule-${want[0].decision}]  ${want[0].outcome}`);
    expect(lines[2]).toMatch(/^more: --cursor s\d+$/);
  });

  it('--json prints the calls and next; following next reaches every match once', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const { code, stdout } = await gatehouse(['audit', 'query', '--data-dir', dir, '--principal', 'alice', '--limit', '8', '--json', ...(cursor ? ['--cursor', cursor] : [])]);
      expect(code).toBe(0);
      const page = JSON.parse(stdout) as { calls: { jobId: string }[]; next?: string };
      seen.push(...page.calls.map((c) => c.jobId));
      cursor = page.next;
    } while (cursor);
    expect(seen).toEqual(calls.filter((c) => c.principal === 'alice').reverse().map((c) => c.jobId));
  });

  it('filters by tool glob, decision, outcome and time', async () => {
    const { stdout } = await gatehouse(['audit', 'query', '--data-dir', dir, '--tool', 'git__*', '--decision', 'allow', '--outcome', 'succeeded', '--since', new Date(calls[10].at).toISOString(), '--until', new Date(calls[50].at).toISOString(), '--json']);
    const want = calls.filter((c) => c.tool.startsWith('git__') && c.decision === 'allow' && c.outcome === 'succeeded' && c.at >= calls[10].at && c.at < calls[50].at);
    expect(want.length).toBeGreaterThan(0);
    expect((JSON.parse(stdout) as { calls: { jobId: string }[] }).calls.map((c) => c.jobId)).toEqual(want.reverse().map((c) => c.jobId));
  });

  it('a bad outcome or cursor is bad usage (exit 2)', async () => {
    expect((await gatehouse(['audit', 'query', '--data-dir', dir, '--outcome', 'nope'])).code).toBe(2);
    expect((await gatehouse(['audit', 'query', '--data-dir', dir, '--cursor', 'forged'])).code).toBe(2);
  });
});
