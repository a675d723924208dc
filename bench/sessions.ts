/**
 * `npm run bench -- sessions`: many 2025-era HTTP sessions held open in one `gatehouse start`. Opens
 * BENCH_SESSIONS (default 10,000) sessions, each initialized and making one echo call, 16 at a time over one
 * keep-alive pool, then leaves them idle; reports the gateway's RSS per held session, and the p50 of a call on one
 * session before and while they are held.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { rssMiB } from './processes.ts';
import { median } from './stats.ts';
import { ALLOW_POLICY, startGatehouseHttp } from './targets.ts';

const TARGET_KIB = 16;
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
const INITIALIZE = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench-sessions","version":"1"}}}';
const ECHO = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo__echo","arguments":{"text":"hi"}}}';

export async function printSessionsBench(): Promise<void> {
  const count = Number(process.env.BENCH_SESSIONS ?? 10_000);
  const workDir = mkdtempSync(join(tmpdir(), 'gh-sessions-'));
  const target = await startGatehouseHttp('sessions', 'gatehouse', { policy: ALLOW_POLICY, workDir, extra: { limits: { maxSessionsPerCaller: count * 2 } } });
  const url = new URL(target.url);
  const pool = new Pool(url.origin, { connections: 16, keepAliveTimeout: 120_000 });
  const post = async (body: string, session?: string) => {
    const res = await pool.request({ path: url.pathname, method: 'POST', headers: session ? { ...HEADERS, 'mcp-session-id': session } : HEADERS, body });
    await res.body.text();
    if (res.statusCode !== 200 && res.statusCode !== 202) throw new Error(`HTTP ${res.statusCode}`);
    return res.headers['mcp-session-id'] as string | undefined;
  };
  const open = async () => {
    const session = (await post(INITIALIZE))!;
    await post('{"jsonrpc":"2.0","method":"notifications/initialized"}', session);
    await post(ECHO, session);
    return session;
  };
  const callP50 = async (session: string) => {
    const times: number[] = [];
    for (let i = 0; i < 500; i++) {
      const began = performance.now();
      await post(ECHO, session);
      times.push(performance.now() - began);
    }
    return median(times);
  };
  try {
    const probe = await open();
    const idleBefore = await callP50(probe);
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssMiB(target.pid)!;
    let opened = 0;
    const began = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (opened < count) {
          opened++;
          await open();
        }
      }),
    );
    const openSeconds = (performance.now() - began) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const after = rssMiB(target.pid)!;
    const held = await callP50(probe);
    const perSession = ((after - before) * 1024) / count;
    console.log(`\nSessions: ${count.toLocaleString('en')} 2025-era sessions opened (initialize, initialized, one echo call each) in ${openSeconds.toFixed(1)} s, then held idle`);
    console.log(`gateway RSS ${before.toFixed(0)} MiB -> ${after.toFixed(0)} MiB: ${perSession.toFixed(1)} KiB per held session (target <= ${TARGET_KIB} KiB: ${perSession <= TARGET_KIB ? 'met' : 'MISSED'})`);
    console.log(`echo call p50 on one session: ${idleBefore.toFixed(3)} ms alone, ${held.toFixed(3)} ms with ${count.toLocaleString('en')} held`);
  } finally {
    await pool.close();
    await target.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}
