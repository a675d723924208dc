/**
 * An approval's round trip, as the approver sees it: from the moment the approver's POST /api/approvals/:id/approve
 * leaves (a click on the page posts the same decision) to the moment the held call's result reaches the client.
 * `gatehouse start` in its own process (embedded mode: approvals in the data dir), a stdio echo upstream, and a
 * real MCP SDK client over Streamable HTTP that sends a progress token, so the gateway holds each call; the
 * approval's id comes from the first progress notification, as a client would show it. Each call has its own
 * arguments, so each is a fresh approval. Env: BENCH_APPROVALS (500 round trips), BENCH_APPROVALS_WARMUP (1000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startGatehouseHttp } from './targets.ts';
import { percentile } from './stats.ts';

const APPROVAL_POLICY = resolve(import.meta.dirname, 'policies/approval.yaml');
const TARGET_P99_MS = 5;

export interface ApprovalRoundTrip {
  /** POST approve sent → the held call's result received (ms). */
  clickToResultMs: number;
  /** POST approve sent → its 200 answer received (ms). */
  clickToAnswerMs: number;
}

/**
 * Runs `count` approval round trips against a Gatehouse at `url` (its /mcp endpoint) whose policy requires an
 * approval for `tool`, approving each through the HTTP API. `headers` authenticate the approver (none when the
 * gateway serves the local user); the MCP client sends them too. `pace` spaces the trips and ends them early (the soak's steady trickle).
 */
export async function measureApprovalRoundTrips(url: string, tool: string, count: number, headers: Record<string, string> = {}, pace: { pauseMs?: number; stop?: () => boolean } = {}): Promise<ApprovalRoundTrip[]> {
  const client = new Client({ name: 'gatehouse-bench-approvals', version: '1.0.0' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  const api = url.replace(/\/mcp$/, '/api/approvals');
  const trips: ApprovalRoundTrip[] = [];
  try {
    for (let i = 0; i < count && !pace.stop?.(); i++) {
      let announced!: (id: string) => void;
      const approvalId = new Promise<string>((resolve) => (announced = resolve));
      const call = client.callTool({ name: tool, arguments: { text: `approval round trip ${i} ${Date.now()}` } }, {
        onprogress: (p: { message?: string }) => {
          const id = /\b(apr_[0-9A-Za-z]+)/.exec(p.message ?? '')?.[1];
          if (id) announced(id);
        },
      } as never);
      const id = await Promise.race([approvalId, call.then((r) => Promise.reject(new Error(`the call was not held: ${JSON.stringify(r.content)}`)))]);
      const sent = performance.now();
      const answer = await fetch(`${api}/${id}/approve`, { method: 'POST', headers });
      const answered = performance.now();
      if (answer.status !== 200) throw new Error(`approve answered ${answer.status}: ${await answer.text()}`);
      const result = await call;
      const returned = performance.now();
      if (result.isError) throw new Error(`the approved call failed: ${JSON.stringify(result.content)}`);
      trips.push({ clickToResultMs: returned - sent, clickToAnswerMs: answered - sent });
      if (pace.pauseMs) await new Promise((resolve) => setTimeout(resolve, pace.pauseMs));
    }
  } finally {
    await client.close();
  }
  return trips;
}

const envInt = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
  return value;
};

/** Starts a Gatehouse that gates the echo tool behind approvals, measures, and prints the figures against the target. */
export async function printApprovalsBench(): Promise<void> {
  const count = envInt('BENCH_APPROVALS', 500);
  // Long enough for V8 to have optimized the approval path: after 20, the p50 was 1.7 times its settled value.
  const warmup = envInt('BENCH_APPROVALS_WARMUP', 1_000);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-approvals-'));
  const gatehouse = await startGatehouseHttp('gatehouse-approvals', 'Gatehouse, every call approved over the API', { policy: APPROVAL_POLICY, workDir });
  try {
    await measureApprovalRoundTrips(gatehouse.url, gatehouse.tool, warmup);
    const trips = await measureApprovalRoundTrips(gatehouse.url, gatehouse.tool, count);
    const sorted = (pick: (t: ApprovalRoundTrip) => number) => Float64Array.from(trips.map(pick)).sort();
    const result = sorted((t) => t.clickToResultMs);
    const answer = sorted((t) => t.clickToAnswerMs);
    const ms = (value: number) => `${value.toFixed(2).padStart(7)} ms`;
    const p99 = percentile(result, 99);
    console.log(`\nApprovals: approver clicks -> held call returns (embedded: gatehouse start, stdio echo upstream; ${count} round trips after ${warmup} warm-up, SDK client over HTTP)`);
    console.log('                                        p50         p99         max');
    console.log(`  POST approve -> held call's result ${ms(percentile(result, 50))} ${ms(p99)} ${ms(result[result.length - 1])}   target p99 <= ${TARGET_P99_MS} ms: ${p99 <= TARGET_P99_MS ? 'ok' : 'MISSED'}`);
    console.log(`  POST approve -> its own answer     ${ms(percentile(answer, 50))} ${ms(percentile(answer, 99))} ${ms(answer[answer.length - 1])}`);
  } finally {
    await gatehouse.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}
