/**
 * `npm run bench -- session-facts`: what session-aware rules add to a call's CPU, in process. Each call runs what
 * the pipeline adds for sessions (src/call/pipeline.ts): the session key, the facts read before the decision when a
 * rule that can apply to the call reads `session` (here: the write and fetch calls, 2 in 5), the check-and-count of its loop breakers and budgets right before dispatch, and the result
 * counted against byte and time budgets. It is measured against the same calls decided without any of it:
 *   none   a policy with no session rule: `Kernel.usesSession` is false, so nothing is loaded or counted
 *   reads  the same policy plus rules that read `session`, a `repeat` and a `budget` (calls, bytes, time, tools)
 * over the embedded adapter (memory, written to `sessions.json`) and, when redis-server is installed, Redis (the
 * gateway's CPU only: the client's encoding and parsing, not the Redis server's). 1,000 sessions, calls spread over
 * them. Targets (issue 15): at most 10 µs of CPU per call for `none`, 30 µs for `reads`, in both modes.
 * Env: BENCH_SESSION_CALLS (20000 per round), BENCH_SESSION_ROUNDS (5).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseYamlText } from '../src/config/yaml-file.ts';
import { mergePolicySources, parsePolicy } from '../src/kernel/bundle.ts';
import { Kernel } from '../src/kernel/kernel.ts';
import type { DecisionInput } from '../src/kernel/decision.ts';
import { SessionTracker } from '../src/session/session-tracker.ts';
import { silentLogger } from '../src/log.ts';
import { FileSessionFacts } from '../adapters/file/session-facts.ts';
import { RedisSessionFacts } from '../adapters/redis/session-facts.ts';
import type { SessionFacts } from '../src/ports.ts';
import type { NormalizedCall } from '../src/protocol/call.ts';
import type { CallToolResult } from '../src/protocol/mcp.ts';
import { startServerProcess, type ServerProcess } from '../test/helpers/server-process.ts';
import { redisServerAvailable } from '../test/helpers/redis-server.ts';
import { median } from './stats.ts';
import { digestOf } from '../src/protocol/digest.ts';

const TARGETS_US = { none: 10, reads: 30 };
const SESSIONS = 1_000;
const TOOLS = ['read_file', 'write_file', 'list', 'fetch', 'query'];

const envInt = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
};

const BASE_RULES = [
  '{ id: ro, match: { annotations: { readOnlyHint: true } }, effect: allow }',
  '{ id: ws, match: { tools: ["fs__write_file"] }, effect: allow_with_constraints, constraints: { paths: { args: [path], allow: ["/ws/**"] } } }',
  '{ id: big, match: { tools: ["db__query"] }, effect: deny, when: "has(args.limit) && args.limit > 500" }',
  '{ id: web, match: { tools: ["web__fetch"] }, effect: allow, when: \'hostOf(args.url).endsWith(".example.com")\' }',
];
const SESSION_RULES = [
  '{ id: busy, match: { tools: ["fs__write_file"] }, effect: deny, when: "session.calls > 1000000" }',
  '{ id: taint, match: { tools: ["web__fetch"] }, effect: require_approval, when: \'"private-data" in session.labels && "fs__read_file" in session.tools\' }',
  '{ id: loop, match: {}, effect: allow, repeat: { limit: 1000000, window: 10m } }',
  '{ id: spend, match: {}, effect: allow, budget: { calls: 1000000, outputBytes: 1000000000, upstreamTime: 1000h, distinctTools: 1000 } }',
];

const kernelOf = (rules: string[]) => new Kernel(mergePolicySources([parsePolicy(parseYamlText('bench.yaml', `version: 2\ndefault: allow\nrules:\n${rules.map((r) => `  - ${r}`).join('\n')}\n`, 'GH_ERR_POLICY_INVALID'))]));

interface BenchCall {
  call: Pick<NormalizedCall, 'caller' | 'meta' | 'client'>;
  input: DecisionInput;
  argsDigest: string;
}

function calls(count: number): BenchCall[] {
  return Array.from({ length: count }, (_, i) => {
    const tool = TOOLS[i % TOOLS.length];
    const server = tool === 'fetch' ? 'web' : tool === 'query' ? 'db' : 'fs';
    const args = tool === 'fetch' ? { url: `https://api.example.com/${i % 50}` } : tool === 'query' ? { limit: i % 600 } : { path: `/ws/${i % 100}.txt` };
    return {
      call: { caller: { tenant: 'default', principal: `p${i % 20}`, sessionId: `session-${i % SESSIONS}` }, meta: undefined, client: { era: 'legacy', capabilities: {}, name: 'bench', version: '1' } },
      input: { tenant: 'default', principal: `p${i % 20}`, server, tool: `${server}__${tool}`, annotations: { readOnlyHint: tool !== 'write_file' }, args, now: 0 },
      argsDigest: digestOf(args),
    };
  });
}

const RESULT: CallToolResult = { content: [{ type: 'text', text: 'x'.repeat(200) }] };

/** One call's session work, as the pipeline does it (with or without it), around the decision. */
async function oneCall(kernel: Kernel, tracker: SessionTracker | undefined, c: BenchCall, now: number): Promise<void> {
  const tracked = tracker && kernel.usesSession ? tracker.track(c.call, now) : undefined;
  const input = { ...c.input, now };
  if (tracked && kernel.readsSessionFor(input.server, input.tool)) input.session = (await tracker!.view(tracked, c.call, now)).view;
  const decision = kernel.decide(input);
  if (!tracked) return;
  await tracker!.admit('take', tracked, decision, c.call, { tool: input.tool, toolCall: true, argsDigest: c.argsDigest, riskTags: kernel.riskTagsOf(input), approved: false, now }, () => ({ jobId: 'bench' }));
  if (SessionTracker.countsResults(decision)) await tracker!.resultCame(tracked, decision, RESULT, 3, now, () => ({ jobId: 'bench' }));
}

/** CPU µs per call (user + system of this process) over `batch`. */
async function cpuPerCall(kernel: Kernel, tracker: SessionTracker | undefined, batch: BenchCall[], concurrency: number): Promise<number> {
  let now = Date.UTC(2026, 6, 28);
  const start = process.cpuUsage();
  for (let i = 0; i < batch.length; i += concurrency) {
    await Promise.all(batch.slice(i, i + concurrency).map((c) => oneCall(kernel, tracker, c, (now += 1))));
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / batch.length;
}

async function measureAdapter(name: string, facts: SessionFacts, concurrency: number, rounds: number, batch: BenchCall[]): Promise<{ name: string; none: number; reads: number }> {
  const plain = kernelOf(BASE_RULES);
  const session = kernelOf([...BASE_RULES, ...SESSION_RULES]);
  const tracker = new SessionTracker(facts, { idleMs: 30 * 60_000, windowMs: 3_600_000 }, silentLogger);
  const warm = batch.slice(0, Math.min(2_000, batch.length));
  for (const k of [plain, session]) {
    await cpuPerCall(k, undefined, warm, concurrency);
    await cpuPerCall(k, tracker, warm, concurrency);
  }
  const none: number[] = [];
  const reads: number[] = [];
  for (let r = 0; r < rounds; r++) {
    none.push((await cpuPerCall(plain, tracker, batch, concurrency)) - (await cpuPerCall(plain, undefined, batch, concurrency)));
    reads.push((await cpuPerCall(session, tracker, batch, concurrency)) - (await cpuPerCall(session, undefined, batch, concurrency)));
  }
  return { name, none: median(none), reads: median(reads) };
}

export async function printSessionFactsBench(): Promise<void> {
  const count = envInt('BENCH_SESSION_CALLS', 20_000);
  const rounds = envInt('BENCH_SESSION_ROUNDS', 5);
  const batch = calls(count);
  const rows: { name: string; none: number; reads: number }[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-sessions-'));
  const file = new FileSessionFacts(dir);
  try {
    rows.push(await measureAdapter('embedded (memory + sessions.json)', file, 1, rounds, batch));
  } finally {
    await file.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (redisServerAvailable()) {
    let server: ServerProcess | undefined;
    let redis: RedisSessionFacts | undefined;
    try {
      server = await startServerProcess('redis-server', (port, d) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', d, '--save', '', '--appendonly', 'no']);
      redis = await RedisSessionFacts.connect({ url: `redis://127.0.0.1:${server.port}` });
      rows.push(await measureAdapter('distributed (Redis), 16 calls at once', redis, 16, rounds, batch.slice(0, Math.max(1, Math.floor(count / 4)))));
    } finally {
      await redis?.close();
      await server?.stop();
    }
  }
  const us = (n: number) => `${n.toFixed(1).padStart(6)} µs`;
  console.log(`\nSession facts: CPU added per call (${count} calls per round over ${SESSIONS} sessions, median of ${rounds} rounds)`);
  console.log(`  ${'adapter'.padEnd(40)} ${'no rule reads session'.padStart(22)} ${'rules read it, repeat, budget'.padStart(30)}`);
  for (const row of rows) console.log(`  ${row.name.padEnd(40)} ${us(row.none).padStart(22)} ${us(row.reads).padStart(30)}`);
  const verdict = (value: number, target: number) => (value <= target ? `meets ≤ ${target} µs` : `MISSES ≤ ${target} µs`);
  for (const row of rows) console.log(`  targets, ${row.name}: none ${verdict(row.none, TARGETS_US.none)}; reads ${verdict(row.reads, TARGETS_US.reads)}`);
}
