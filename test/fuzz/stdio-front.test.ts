// The stdio front (`gatehouse wrap`, a real child process) under the same hostile messages as the HTTP front, one
// per line, FUZZ_RUNS / 2 of them. Then: the process is still alive and answers a well-formed call, no call the
// policy refuses reached the upstream, it exits 0 when its input closes, and its audit chain verifies.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIXTURE_UPSTREAM, ROOT, waitFor } from '../helpers/gateway-harness.ts';
import { GATEHOUSE_BIN, gatehouse } from '../helpers/cli.ts';
import { hostileBody, RECORDED } from './hostile-messages.ts';

const RUNS = Math.max(100, Math.round(Number(process.env.FUZZ_RUNS ?? 10_000) / 2));
const POLICY = 'version: 2\ndefault: deny\nrules:\n  - { id: echo-only, match: { tools: [fx__echo] }, effect: allow }\n';

describe(`the stdio front under ${RUNS} hostile lines`, () => {
  it('stays up and answers, lets nothing refused through, exits 0 at the end of its input, and its chain verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-fuzz-stdio-'));
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    const sideEffects = join(dir, 'side-effects.log');
    const child = spawn(process.execPath, [GATEHOUSE_BIN, 'wrap', '--policy', join(dir, 'policy.yaml'), '--data-dir', join(dir, 'data'), '--name', 'fx', '--', process.execPath, '--import', 'tsx', FIXTURE_UPSTREAM], {
      cwd: ROOT,
      env: { ...process.env, SIDE_EFFECTS_FILE: sideEffects },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.resume();
    const write = (line: string) => new Promise<void>((resolve) => (child.stdin.write(`${line}\n`) ? resolve() : child.stdin.once('drain', resolve)));

    await write(JSON.stringify(RECORDED[0]));
    await write(JSON.stringify(RECORDED[1]));
    for (const body of fc.sample(hostileBody, { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 20261205) })) await write(body);
    // Still serving: a well-formed call, after everything else, is answered. On a starved machine the fuzz's backlog
    // of records can outlast audit.writeTimeout, and the gateway then refuses calls (fail closed, retryable) until a
    // write succeeds: such a refusal is an answer too, and the call made again must run.
    const answerTo = async (id: string) => {
      await write(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'still here' } } }));
      await waitFor(() => out.includes(`"id":"${id}"`), `the answer to ${id}`, 120_000);
      return out.split('\n').find((line) => line.includes(`"id":"${id}"`))!;
    };
    let answer = await answerTo('after-the-fuzz');
    for (let again = 1; again <= 5 && /"code":"GH_ERR_(AUDIT|KERNEL)_UNAVAILABLE"/.test(answer); again++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      answer = await answerTo(`after-the-fuzz, again ${again}`);
    }
    expect(answer).toMatch(/"result":\{"content":\[\{"type":"text","text":"echo: still here"/);
    expect(existsSync(sideEffects) ? readFileSync(sideEffects, 'utf8') : '').toBe('');
    child.stdin.end();
    expect(await exited).toBe(0);
    expect(await gatehouse(['audit', 'verify', '--data-dir', join(dir, 'data')])).toMatchObject({ code: 0 });
  }, 600_000);
});
