// Item 2 of issue 16: a 2026-07-28 upstream's input requests (MRTR) reach the client, whatever its era: relayed as
// `input_required` with Gatehouse's own signed state to a 2026-07-28 client, asked on the session of a 2025 one.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { auditOf, connectHttp, ROOT, startHarness, waitFor, type Era, type Harness } from '../helpers/gateway-harness.ts';
import { startEraServer } from '../fixtures/era-server.ts';

const ERA_SERVER = join(ROOT, 'test/fixtures/era-server.ts');

type Result = { isError?: boolean; content: unknown; _meta?: Record<string, unknown> };
type Raw = Result & { resultType?: string; inputRequests?: Record<string, { method: string; params: Record<string, unknown> }>; requestState?: string };
const text = (r: Result) => (r.content as { text: string }[])[0].text;
const codeOf = (r: Result) => (r._meta?.['gatehouse/error'] as { code?: string } | undefined)?.code;
const manual = (client: Client, params: Record<string, unknown>) => client.callTool(params as never, { allowInputRequired: true } as never) as Promise<Raw>;

let h: Harness;
let remote: Awaited<ReturnType<typeof startEraServer>>;
let calls: string;
const clients: Client[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'era-input-'));
  calls = join(dir, 'calls.jsonl');
  process.env.ERA_SERVER_LOG = calls;
  remote = await startEraServer();
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, ['version: 2', 'default: allow', 'rules:', '  - { id: confirm-needs-a-human, match: { tools: [v2s__confirm] }, effect: require_approval, reason: it confirms things }', ''].join('\n'));
  h = await startHarness({
    policies: [policy],
    upstreams: {
      v2s: { command: process.execPath, args: ['--import', 'tsx', ERA_SERVER], env: { ERA_SERVER_LOG: calls }, cwd: ROOT, timeout: 60_000 },
      v2h: { url: remote.url, headers: {}, timeout: 60_000 },
    },
  });
  await waitFor(() => ['v2s__confirm', 'v2h__confirm'].every((name) => h.gateway.catalog.resolve(name)), 'the modern upstreams to list their tools');
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await h?.close();
  await remote?.close();
});

async function connect(era: Era, capabilities: Record<string, unknown> = { elicitation: { form: {} }, roots: {} }): Promise<Client> {
  const client = await connectHttp(h.url, era, capabilities);
  clients.push(client);
  return client;
}

/** Answers every elicitation: Gatehouse's approval form with a confirm, the upstream's questions from `answers`. */
function answering(client: Client, answers: Record<string, string>): string[] {
  const asked: string[] = [];
  client.setRequestHandler('elicitation/create' as never, (async (request: { params: { message: string; requestedSchema?: { properties?: Record<string, unknown> } } }) => {
    asked.push(request.params.message);
    const keys = Object.keys(request.params.requestedSchema?.properties ?? {});
    if (keys.includes('confirm')) return { action: 'accept', content: { confirm: true } };
    return { action: 'accept', content: Object.fromEntries(keys.map((k) => [k, answers[k]])) };
  }) as never);
  client.setRequestHandler('roots/list' as never, (async () => ({ roots: [{ uri: 'file:///work', name: 'work' }] })) as never);
  return asked;
}

const served = (): { era: string; tool: string; state: boolean; answered?: string[] }[] => (existsSync(calls) ? readFileSync(calls, 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l));

for (const era of ['legacy', 'modern'] as Era[]) {
  describe(`a ${era} client in front of 2026-07-28 upstreams`, () => {
    it('answers an MRTR elicitation tool (HTTP upstream), and a roots request (stdio upstream)', async () => {
      const client = await connect(era);
      const asked = answering(client, { ok: 'yes' });
      expect(text((await client.callTool({ name: 'v2h__confirm', arguments: { what: 'deploy' } })) as Result)).toBe('confirm:deploy:accept:yes');
      expect(asked).toEqual(['Confirm deploy?']);
      expect(text((await client.callTool({ name: 'v2s__ask_roots', arguments: {} })) as Result)).toBe('roots:file:///work');
    });

    it('goes through a multi-round tool whose upstream carries its own state between rounds', async () => {
      const client = await connect(era);
      const asked = answering(client, { name: 'ada', colour: 'green' });
      for (const name of ['v2s__two_rounds', 'v2h__two_rounds']) {
        expect(text((await client.callTool({ name, arguments: {} })) as Result)).toBe('two_rounds:ada:green');
      }
      expect(asked).toEqual(['Your name?', 'Your colour?', 'Your name?', 'Your colour?']);
    });

    it('asks for the approval, then relays the upstream input request, in one call that runs once', async () => {
      const client = await connect(era);
      const asked = answering(client, { ok: 'sure' });
      const before = served().filter((c) => c.tool === 'confirm').length;
      const result = (await client.callTool({ name: 'v2s__confirm', arguments: { what: `release-${era}` } })) as Result;
      expect(text(result)).toBe(`confirm:release-${era}:accept:sure`);
      expect(asked).toHaveLength(2);
      expect(asked[1]).toBe(`Confirm release-${era}?`);
      // The upstream saw the call twice (it asked, then was answered), and never before the approval.
      expect(served().filter((c) => c.tool === 'confirm').length - before).toBe(2);
      const jobId = (result._meta?.['gatehouse/job'] as { jobId: string }).jobId;
      const types = async () => (await auditOf(h.dataDir, 'default')).filter((r) => r.jobId === jobId).map((r) => r.type);
      await waitFor(async () => (await types()).includes('job.succeeded'), 'the job to be recorded as succeeded');
      expect(await types()).toContain('job.input_required');
    });

    it("the upstream hears the client's own capabilities: one that declared none gets the upstream's -32021, and nothing hangs", async () => {
      const client = await connect(era, {});
      for (const name of ['v2h__confirm', 'v2s__ask_llm']) {
        await expect(client.callTool({ name, arguments: { what: 'x' } })).rejects.toMatchObject({ code: -32021 });
      }
      // Declared no sampling: the upstream asks the user instead, never for the sampling Gatehouse itself could relay.
      const eliciting = await connect(era);
      answering(eliciting, { answer: 'typed' });
      for (const name of ['v2h__ask_llm', 'v2s__ask_llm']) expect(text((await eliciting.callTool({ name, arguments: {} })) as Result)).toBe('ask_llm:elicitation:typed');
    });
  });
}

describe('a 2026-07-28 client getting a prompt whose upstream asks for input', () => {
  it("gets input_required with Gatehouse's state, and the prompt on its retry (HTTP and stdio upstreams)", async () => {
    const client = await connect('modern');
    const asked = answering(client, { name: 'cy' });
    for (const name of ['v2h__greeting', 'v2s__greeting']) {
      const prompt = (await client.getPrompt({ name })) as { messages: { content: { text: string } }[] };
      expect(prompt.messages[0].content.text).toBe('Hello cy');
    }
    expect(asked).toEqual(['Your name?', 'Your name?']);
    const first = (await client.getPrompt({ name: 'v2h__greeting' }, { allowInputRequired: true } as never)) as unknown as Raw;
    expect(first.resultType).toBe('input_required');
    expect(first.requestState?.startsWith('gh2.')).toBe(true);
  });
});

describe("a 2026-07-28 client retrying by hand: the requestState is Gatehouse's, bound to the call, used once", () => {
  it('wraps the upstream state, and refuses a tampered, foreign or replayed state before the upstream sees it', async () => {
    const client = await connect('modern');
    const call = { name: 'v2h__two_rounds', arguments: {} };
    const first = await manual(client, call);
    expect(first.resultType).toBe('input_required');
    expect(Object.keys(first.inputRequests ?? {})).toEqual(['name']);
    const [version, body] = first.requestState!.split('.');
    expect(version).toBe('gh2');
    const round1 = JSON.parse(Buffer.from(body, 'base64url').toString());
    expect(round1).toMatchObject({ j: expect.any(String), q: ['name'], n: 1 });
    expect(round1.u).toBeUndefined(); // the upstream gave no state of its own in its first round

    const second = await manual(client, { ...call, inputResponses: { name: { action: 'accept', content: { name: 'bo' } } }, requestState: first.requestState });
    expect(second.resultType).toBe('input_required');
    const round2 = JSON.parse(Buffer.from(second.requestState!.split('.')[1], 'base64url').toString());
    expect(round2).toMatchObject({ j: round1.j, q: ['colour'], n: 2, u: expect.stringMatching(/^v1\./) });

    const reached = served().length;
    const [, , mac] = second.requestState!.split('.');
    const altered = Buffer.from(JSON.stringify({ ...round2, u: `${round2.u}x` })).toString('base64url');
    const answer = { colour: { action: 'accept', content: { colour: 'red' } } };
    for (const requestState of [`gh2.${altered}.${mac}`, first.requestState!.replace(/.$/, 'A'), 'v1.not.ours']) {
      await expect(manual(client, { ...call, inputResponses: answer, requestState })).rejects.toMatchObject({ code: -32602, data: { code: 'GH_ERR_REQUEST_STATE_INVALID' } });
    }
    // Another call (other arguments) cannot borrow it.
    await expect(manual(client, { name: 'v2h__confirm', arguments: { what: 'x' }, inputResponses: answer, requestState: second.requestState })).rejects.toMatchObject({ code: -32602 });
    expect(served().length).toBe(reached);

    // An answer the upstream did not ask for (here one to Gatehouse's own approval question) is not its business.
    const done = await manual(client, { ...call, inputResponses: { ...answer, gatehouse_approval: { action: 'accept' } }, requestState: second.requestState });
    expect(text(done)).toBe('two_rounds:bo:red');
    expect(served().at(-1)?.answered).toEqual(['colour']);
    expect((done._meta?.['gatehouse/job'] as { jobId: string }).jobId).toBe(round1.j);
    // Replayed: already redeemed.
    await expect(manual(client, { ...call, inputResponses: answer, requestState: second.requestState })).rejects.toMatchObject({ code: -32602, data: { problem: 'replayed' } });
    expect(served().length).toBe(reached + 1);

    // Every round is the one job in the audit trail.
    const ofJob = async () => (await auditOf(h.dataDir, 'default')).filter((r) => r.jobId === round1.j);
    await waitFor(async () => (await ofJob()).filter((r) => r.type === 'job.succeeded').length === 3, 'the three rounds to be recorded');
    const records = await ofJob();
    expect(records.filter((r) => r.type === 'job.submitted').map((r) => (r.data as { round?: number }).round)).toEqual([undefined, 1, 2]);
    expect(records.filter((r) => r.type === 'job.input_required')).toHaveLength(2);
  });

  it('relays at most 10 rounds of one call, as for a 2025 client: an upstream that keeps asking ends the call', async () => {
    const client = await connect('modern');
    const call = { name: 'v2h__two_rounds', arguments: {} };
    let answer = await manual(client, call);
    answer = await manual(client, { ...call, inputResponses: { name: { action: 'accept', content: { name: 'bo' } } }, requestState: answer.requestState });
    // An empty colour: the upstream asks for it again, round after round.
    const empty = { colour: { action: 'accept', content: { colour: '' } } };
    let rounds = 2;
    while (answer.resultType === 'input_required') {
      answer = await manual(client, { ...call, inputResponses: empty, requestState: answer.requestState });
      if (answer.resultType === 'input_required') rounds++;
    }
    expect(rounds).toBe(10);
    expect(text(answer)).toContain('GH_ERR_ERA_UNTRANSLATABLE');
  });
});
