import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, waitFor } from '../helpers/gateway-harness.ts';
import { gatehouse } from '../helpers/cli.ts';
import type { StartedProcess } from '../helpers/start-process.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { freePort } from '../helpers/server-process.ts';
import { connect as connectNats } from '@nats-io/transport-node';
import { NatsBus } from '../../adapters/nats/bus.ts';
import { silentLogger } from '../../src/log.ts';
import { upstreamRpcSubject } from '../../src/protocol/upstream-rpc.ts';
import { digestOf } from '../../src/protocol/digest.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';
import { approvalId, clusterAvailable, countWrites, SIGNING_KEY, startCluster, text, waitForLiveWorkers, type Cluster, type ToolResult, type WorkerProcess } from '../helpers/distributed.ts';

// Distributed mode end to end, with real processes: NATS and Redis started here, two gateway replicas
// (`gatehouse start`) and two workers (`gatehouse worker --pool tools`) on the same config.
const available = clusterAvailable();

describe.skipIf(!available)('distributed mode', () => {
  let cluster: Cluster;
  let gateways: StartedProcess[];
  let workers: WorkerProcess[];
  let config: string;
  const clients: Client[] = [];
  const connect = async (gateway: StartedProcess) => {
    const client = await connectHttp(gateway.url);
    clients.push(client);
    return client;
  };
  const call = (client: Client, name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }) as Promise<ToolResult>;
  const writesOf = (key: string) => cluster.writes(key);
  const workerThatWrote = (key: string) => workers.find((w) => countWrites(w.sideEffects, key) > 0);
  const listed = async (client: Client) => (await client.listTools()).tools.map((t) => t.name);
  const replaceWorker = async (victim: WorkerProcess, name: string) => workers.splice(workers.indexOf(victim), 1, await cluster.addWorker(name));

  beforeAll(async () => {
    cluster = await startCluster();
    ({ gateways, workers, config } = cluster);
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await cluster?.stop();
  });

  it('lists the pool’s tools through either replica and runs calls on the workers, spread over both', async () => {
    for (const gateway of gateways) {
      const client = await connect(gateway);
      await waitFor(async () => (await listed(client)).includes('fy__slow_write'), 'the pool’s tools to be listed');
      expect(await listed(client)).toEqual(expect.arrayContaining(['fx__echo', 'fx__write', 'fy__echo']));
    }
    const client = clients[0];
    // A replica routes only to workers it has heard.
    await waitForLiveWorkers(gateways[0], 2);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => call(client, 'fx__slow_write', { key: `spread-${i}`, delayMs: 200 })));
    expect(results.map(text)).toEqual(Array.from({ length: 8 }, (_, i) => `wrote spread-${i} slowly`));
    for (let i = 0; i < 8; i++) expect(writesOf(`spread-${i}`)).toBe(1);
    // Least-loaded routing: concurrent calls land on both workers.
    expect(workers.every((w) => Array.from({ length: 8 }, (_, i) => countWrites(w.sideEffects, `spread-${i}`)).some((n) => n > 0))).toBe(true);
  });

  it("knows who a pool's upstream says it is (its serverInfo, through the workers), as `pack add` reads it", async () => {
    const catalog = join(cluster.dir, '.gatehouse', 'catalog.json');
    const servers = () => (existsSync(catalog) ? (JSON.parse(readFileSync(catalog, 'utf8')) as { servers?: Record<string, unknown> }).servers : undefined);
    await waitFor(() => servers()?.fx !== undefined, 'the replicas to record the pool upstreams');
    expect(servers()).toEqual({ fx: { name: 'gatehouse-test-upstream', version: '1.0.0' }, fy: { name: 'gatehouse-test-upstream', version: '1.0.0' } });
  });

  it('progress and an elicitation from the upstream a worker runs reach the client through its replica', async () => {
    const client = await connectHttp(gateways[1].url, 'legacy', { elicitation: { form: {} } });
    clients.push(client);
    client.setRequestHandler('elicitation/create' as never, (async () => ({ action: 'accept', content: { answer: '42' } })) as never);
    await waitFor(async () => (await listed(client)).includes('fx__ask'), 'the pool’s tools to be listed');
    expect(text((await client.callTool({ name: 'fx__ask', arguments: {} })) as ToolResult)).toBe('accept: {"answer":"42"}');
    const progress: number[] = [];
    const slow = (await client.callTool({ name: 'fx__slow', arguments: { steps: 3, delayMs: 10 } }, { onprogress: (p: { progress: number }) => progress.push(p.progress) } as never)) as ToolResult;
    expect(text(slow)).toBe('done after 3 steps');
    expect(progress).toEqual([1, 2, 3]);
  });

  it('a client that cancels a call running on a worker cancels it there (sys.job.cancel), and the job ends cancelled', async () => {
    const client = await connect(gateways[0]);
    const controller = new AbortController();
    let started!: () => void;
    const firstProgress = new Promise<void>((resolve) => (started = resolve));
    const running = client.callTool({ name: 'fx__slow', arguments: { steps: 100, delayMs: 100 } }, { signal: controller.signal, onprogress: () => started() } as never);
    await firstProgress;
    controller.abort();
    await expect(running).rejects.toThrow();
    await waitFor(async () => (await gatehouse(['audit', 'tail', '-n', '200', '--config', config])).stdout.includes('"type":"job.cancelled"'), 'the job to end cancelled');
  });

  it('an approval asked through replica A is approved with the CLI (state in Redis) and resumed through replica B, once', async () => {
    const [a, b] = [await connect(gateways[0]), await connect(gateways[1])];
    const args = { key: 'approved-once', value: 'v' };
    const pending = await call(a, 'fx__write', args);
    expect(text(pending)).toContain('GH_ERR_APPROVAL_PENDING');
    const id = approvalId(pending);
    const listedPending = await gatehouse(['approvals', 'list', '--config', config]);
    expect(listedPending.stdout).toContain(id);
    expect(await gatehouse(['approvals', 'approve', id, '--as', 'bob', '--config', config])).toMatchObject({ code: 0 });
    const resumed = await call(b, 'fx__write', args);
    expect(resumed.isError).toBeFalsy();
    expect(text(resumed)).toBe('wrote approved-once');
    // Single use: the same call again asks anew, and nothing more runs.
    expect(text(await call(a, 'fx__write', args))).toContain('GH_ERR_APPROVAL_PENDING');
    await waitFor(() => writesOf('approved-once=v') === 1, 'the approved write');
    expect(writesOf('approved-once=v')).toBe(1);
  });

  it('never runs a tools/call sent on an upstream’s request/reply channel: tools run only as jobs the kernel decided on', async () => {
    const intruder = await NatsBus.connect({ url: cluster.nats.url, name: 'intruder', log: silentLogger });
    try {
      const body = { op: 'request', method: 'tools/call', params: { name: 'write', arguments: { key: 'via-rpc', value: 'v' } }, timeoutMs: 5_000 };
      // A worker answers (the channel is live), refusing: had it passed the call on, the write would have run first.
      await expect(intruder.request(upstreamRpcSubject('fx'), body, { timeoutMs: 30_000 })).rejects.toMatchObject({ code: 'GH_ERR_FORBIDDEN' });
    } finally {
      await intruder.close();
    }
    expect(writesOf('via-rpc=v')).toBe(0);
  });

  it('never carries arguments or results on NATS: only pointers to them in Redis', async () => {
    const raw = await connectNats({ servers: cluster.nats.url });
    const seen: { subject: string; data: Buffer }[] = [];
    raw.subscribe('>', { callback: (_err, msg) => void seen.push({ subject: msg.subject, data: Buffer.from(msg.data) }) });
    await raw.flush();
    try {
      const client = await connect(gateways[0]);
      const marker = `never-on-the-bus-${Date.now()}`;
      const result = await call(client, 'fx__slow_write', { key: marker, delayMs: 0 });
      expect(text(result)).toBe(`wrote ${marker} slowly`);
      const jobId = (result._meta?.['gatehouse/job'] as { jobId: string }).jobId;
      // The job's own packets crossed NATS, and this subscriber saw them: its result among them.
      // On the subject of the replica that waits for it (sys.job.reply.<replica>), the only one that hears it.
      await waitFor(() => seen.some((m) => m.subject.startsWith('sys.job.reply.gw-') && m.data.includes(jobId)), 'the job’s result packet');
      expect(seen.filter((m) => m.data.includes(jobId)).length).toBeGreaterThan(1);
      expect(seen.filter((m) => m.data.includes(marker)).map((m) => m.subject)).toEqual([]);
      // What the result was is proven by its digest, recorded from the worker's (Gatehouse's own CAP field).
      const { _meta, ...got } = result;
      const recorded = async () => (await gatehouse(['audit', 'tail', '-n', '400', '--config', config])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord);
      await waitFor(async () => (await recorded()).some((r) => r.jobId === jobId && r.type === 'job.succeeded'), 'the job’s outcome record');
      expect((await recorded()).find((r) => r.jobId === jobId && r.type === 'job.succeeded')?.data).toMatchObject({ resultDigest: digestOf(got), resultBytes: expect.any(Number) });
    } finally {
      await raw.close();
    }
  });

  it('kill -9 of the worker running a non-idempotent call: the call ends GH_ERR_EXECUTION_IN_DOUBT and never runs again', async () => {
    const client = await connect(gateways[0]);
    const running = call(client, 'fx__slow_write', { key: 'doubt', delayMs: 10_000 });
    await waitFor(() => workerThatWrote('doubt') !== undefined, 'the call to start on a worker');
    const victim = workerThatWrote('doubt')!;
    await victim.kill();
    const result = await running;
    expect(result.isError).toBe(true);
    expect(text(result)).toContain('GH_ERR_EXECUTION_IN_DOUBT');
    expect(writesOf('doubt')).toBe(1);
    await replaceWorker(victim, 'w-after-doubt');
  });

  it('kill -9 of the worker running an idempotent call: it runs again on the other worker and succeeds', async () => {
    const client = await connect(gateways[1]);
    await waitFor(async () => (await listed(client)).includes('fy__slow_write'), 'the pool’s tools to be listed');
    const running = call(client, 'fy__slow_write', { key: 'again', delayMs: 10_000 }); // long enough to be killed before it answers, even on a loaded machine
    await waitFor(() => workerThatWrote('again') !== undefined, 'the call to start on a worker');
    const victim = workerThatWrote('again')!;
    await victim.kill();
    const result = await running;
    expect(result.isError).toBeFalsy();
    expect(text(result)).toBe('wrote again slowly');
    const survivor = workers.find((w) => w !== victim)!;
    expect(countWrites(survivor.sideEffects, 'again')).toBe(1);
    await replaceWorker(victim, 'w-after-retry');
  });

  it('with no live worker, a call fails with GH_ERR_NO_WORKER instead of hanging, and works again once one joins', async () => {
    const client = await connect(gateways[0]);
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    const result = await call(client, 'fx__slow_write', { key: 'nobody', delayMs: 0 });
    expect(result.isError).toBe(true);
    expect(text(result)).toContain('GH_ERR_NO_WORKER');
    workers.push(await cluster.addWorker('w-back'));
    await waitFor(async () => !(await call(client, 'fx__echo', { text: 'back' })).isError, 'service to resume');
    expect(text(await call(client, 'fx__echo', { text: 'back' }))).toBe('echo: back');
  });

  it('a replica killed while an approval is pending loses nothing: approved and resumed through the other replica, once; the audit chain verifies', async () => {
    const [a, b] = [await connect(gateways[0]), await connect(gateways[1])];
    const args = { key: 'after-crash', value: 'v' };
    const id = approvalId(await call(a, 'fx__write', args));
    gateways[0].child.kill('SIGKILL');
    await new Promise((r) => gateways[0].child.once('exit', r));
    // Approved through the surviving replica's approvals API (local-user mode: loopback, no API keys).
    const approved = await fetch(`${gateways[1].url.replace(/\/mcp$/, '')}/api/approvals/${id}/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(approved.status).toBe(200);
    expect(text(await call(b, 'fx__write', args))).toBe('wrote after-crash');
    await waitFor(() => writesOf('after-crash=v') === 1, 'the approved write');
    const verified = await gatehouse(['audit', 'verify', '--config', config]);
    expect(verified.stdout).toMatch(/tenant default: OK/);
    // Two replicas and two workers signed checkpoints into one Redis chain with the shared key.
    expect(verified.stdout).toMatch(/\d+ signed checkpoints verify/);
    expect(verified.code).toBe(0);
  });
});

describe.skipIf(!available)('distributed mode: a wrong endpoint is a clear startup error naming it', () => {
  it('gatehouse start and gatehouse worker exit 1 with the coded error and the endpoint, never the password', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-dist-bad-'));
    const config = join(dir, 'gatehouse.yaml');
    const closed = await freePort();
    const base = [
      `approvals: { signingKey: ${JSON.stringify(SIGNING_KEY)} }`,
      'listen: { http: "127.0.0.1:0" }',
      `upstreams: { fx: { command: node, args: ["x.js"], pool: tools } }`,
    ];
    writeFileSync(config, ['mode: distributed', `nats: { url: "nats://user:hunter2@127.0.0.1:${closed}" }`, `redis: { url: "redis://127.0.0.1:${closed}" }`, ...base].join('\n'));
    for (const args of [['start', '--config', config], ['worker', '--config', config, '--pool', 'tools']]) {
      const run = await gatehouse(args);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('GH_ERR_BUS_UNAVAILABLE');
      expect(run.stderr).toContain(`127.0.0.1:${closed}`);
      expect(run.stderr).not.toContain('hunter2');
    }
    const nats = await startNatsServer();
    try {
      writeFileSync(config, ['mode: distributed', `nats: { url: "${nats.url}" }`, `redis: { url: "redis://:hunter2@127.0.0.1:${closed}" }`, ...base].join('\n'));
      const run = await gatehouse(['start', '--config', config]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('GH_ERR_STATE_UNAVAILABLE');
      expect(run.stderr).toContain(`127.0.0.1:${closed}`);
      expect(run.stderr).not.toContain('hunter2');
    } finally {
      await nats.stop();
    }
  });
});

