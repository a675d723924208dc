/**
 * What an audit sink costs a governed call: two `gatehouse start`s side by side (bench/side-by-side.ts), the same
 * allow policy and stdio echo upstream, one forwarding its audit trail to an HTTP sink (`audit.sinks`, defaults:
 * batches of up to 500, a 1 s poll once caught up) and one without. The sink is a receiver in this process that
 * accepts every batch; only the gateway process's CPU is counted, so the figure is the forwarder's reading,
 * encoding and sending, on top of the call path it never touches.
 * Env: BENCH_SINKS_CALLS (calls per batch, 2000), BENCH_SINKS_ROUNDS (5).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll } from './processes.ts';
import { cpuRatios, printSides, sideBySide } from './side-by-side.ts';
import { ALLOW_POLICY, startGatehouseHttp, type HttpTarget } from './targets.ts';

export async function printAuditSinksBench(): Promise<void> {
  const calls = Number(process.env.BENCH_SINKS_CALLS ?? 2_000);
  const rounds = Number(process.env.BENCH_SINKS_ROUNDS ?? 5);
  const workDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-sinks-'));
  const targets: HttpTarget[] = [];
  let records = 0;
  let batches = 0;
  const receiver = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      batches++;
      records += (JSON.parse(text) as { records: unknown[] }).records.length;
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/ingest`;
  try {
    // A wall-clock decision budget a loaded machine cannot miss: a denied call would end the run, and it is not what is measured.
    const kernel = { decisionBudget: '10s' };
    const [on, off] = await Promise.all([
      startGatehouseHttp('sink-on', 'audit sink on', { policy: ALLOW_POLICY, workDir, extra: { kernel, audit: { sinks: [{ name: 'bench', type: 'http', url }] } } }),
      startGatehouseHttp('sink-off', 'audit sink off', { policy: ALLOW_POLICY, workDir, extra: { kernel } }),
    ]);
    targets.push(on, off);
    const figures = await sideBySide(targets, { calls, rounds });
    console.log(`\nAudit sink on vs off: governed echo call (allow, stdio upstream), HTTP 2025, one HTTP sink; ${calls} calls per batch, median of ${rounds} interleaved rounds`);
    printSides(figures, ['sink-on', 'sink-off']);
    const ratios = cpuRatios(figures, 'sink-on', 'sink-off');
    for (const r of ratios) console.log(`CPU per call, sink on / off at c=${r.concurrency}: ${r.ratio.toFixed(3)}`);
    console.log(`The sink received ${records} records in ${batches} batches.`);
    console.log(JSON.stringify({ bench: 'audit-sinks', calls, rounds, ratios, records, batches }));
  } finally {
    await Promise.allSettled(targets.map((t) => t.stop()));
    killAll();
    receiver.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}
