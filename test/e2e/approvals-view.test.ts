import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { startHarness, type Harness } from '../helpers/gateway-harness.ts';
import { api, approverAuth, baseOf, connectWithKey, KEYS } from '../helpers/approvers.ts';
import { PageClient } from '../helpers/page-client.ts';
import { gatehouse } from '../helpers/cli.ts';

// What approvers see of a call they are asked to approve: a one-line summary in every list (API, CLI, page) that
// tells two calls apart, and the whole redacted arguments in every detail, plus a download for approvers of the
// approval's tenant only. Secrets, by key or by the policy's redact.args, are redacted everywhere, on disk too.

/** Caught by the secret-key rule (the key says token). */
const TOKENS = ['TOKEN-SECRET-one-1111', 'TOKEN-SECRET-two-2222', 'TOKEN-SECRET-long-3333'];
/** Caught by the policy's redact.args pattern, inside a value that is shown. */
const PATTERN_SECRET = 'sk-ABCDEFGH12345678';
const SECRETS = [...TOKENS, PATTERN_SECRET];

const FIRST = 'first draft: the quick brown fox jumps over the lazy dog';
const SECOND = 'second draft: pack my box with five dozen liquor jugs';
/** Far past the old 600-character preview, with a secret in the middle and a tail that must be shown. */
const LONG = `${'lorem ipsum dolor sit amet '.repeat(120)}${PATTERN_SECRET} ${'consectetur adipiscing elit '.repeat(120)}END-OF-THE-LONG-VALUE`;
const LONG_REDACTED = LONG.replace(PATTERN_SECRET, '[redacted]');

function policyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-view-policy-'));
  writeFileSync(
    join(dir, 'policy.yaml'),
    [
      'version: 2',
      'default: allow',
      'rules:',
      '  - id: writes',
      '    match: { tools: [fx__write] }',
      '    effect: require_approval',
      "    constraints: { redact: { args: ['/sk-[A-Za-z0-9]{8,}/'] } }",
      '',
    ].join('\n'),
  );
  return dir;
}

const expectNoSecret = (where: string, text: string) => {
  for (const secret of SECRETS) expect(text, `${where} shows ${secret}`).not.toContain(secret);
};

describe('what approvers see of the arguments', () => {
  let h: Harness;
  let client: Client;
  const ids: Record<'first' | 'second' | 'long', string> = { first: '', second: '', long: '' };

  const ask = async (value: string, apiToken: string): Promise<string> => {
    const result = await client.callTool({ name: 'fx__write', arguments: { key: 'notes/today.txt', value, apiToken } });
    return ((result._meta as Record<string, unknown>)['gatehouse/approval'] as { id: string }).id;
  };

  beforeAll(async () => {
    h = await startHarness({ auth: approverAuth, policies: [policyDir()] });
    client = await connectWithKey(h.url, KEYS.caller);
    ids.first = await ask(FIRST, TOKENS[0]);
    ids.second = await ask(SECOND, TOKENS[1]);
    ids.long = await ask(LONG, TOKENS[2]);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await h?.close();
  });

  it('tells two pending writes with different contents apart in the API list, and redacts their secrets', async () => {
    const listed = await api(h, '/api/approvals', { key: KEYS.approver });
    expect(listed.status).toBe(200);
    const summaries = new Map<string, string>(listed.body.approvals.map((a: { id: string; argsSummary: string }) => [a.id, a.argsSummary]));
    expect(summaries.get(ids.first)).toContain('notes/today.txt');
    expect(summaries.get(ids.first)).toContain(FIRST.slice(0, 30));
    expect(summaries.get(ids.second)).toContain(SECOND.slice(0, 30));
    expect(summaries.get(ids.first)).not.toBe(summaries.get(ids.second));
    for (const summary of summaries.values()) expect(summary).not.toContain('\n');
    expect(summaries.get(ids.long)!.length).toBeLessThan(300);
    // A list stays small: the whole arguments are in the detail.
    expect(listed.body.approvals.every((a: Record<string, unknown>) => a.redactedArgs === undefined)).toBe(true);
    expectNoSecret('the API list', JSON.stringify(listed.body));
  });

  it('holds the whole redacted arguments in the API detail, past the old cut', async () => {
    const detail = await api(h, `/api/approvals/${ids.long}`, { key: KEYS.approver });
    expect(detail.status).toBe(200);
    expect(detail.body.approval.redactedArgs).toEqual({ key: 'notes/today.txt', value: LONG_REDACTED, apiToken: '[redacted]' });
    expect(detail.body.approval.argsCut).toBeUndefined();
    expectNoSecret('the API detail', JSON.stringify(detail.body));
  });

  it('tells them apart in `approvals list`, and `approvals show` prints the whole redacted arguments (--json too)', async () => {
    const [list, listJson, show, showJson] = await Promise.all([
      gatehouse(['approvals', 'list', '--data-dir', h.dataDir]),
      gatehouse(['approvals', 'list', '--json', '--data-dir', h.dataDir]),
      gatehouse(['approvals', 'show', ids.long, '--data-dir', h.dataDir]),
      gatehouse(['approvals', 'show', ids.long, '--json', '--data-dir', h.dataDir]),
    ]);
    for (const run of [list, listJson, show, showJson]) expect(run).toMatchObject({ code: 0, stderr: '' });
    const entryOf = (id: string) => list.stdout.slice(list.stdout.indexOf(id)).split(/\n(?=apr_)/)[0];
    expect(entryOf(ids.first)).toContain(FIRST.slice(0, 30));
    expect(entryOf(ids.second)).toContain(SECOND.slice(0, 30));
    expect(entryOf(ids.first)).not.toContain(SECOND.slice(0, 30));
    expect(JSON.parse(listJson.stdout).map((r: { id: string; argsSummary: string }) => r.argsSummary)).toHaveLength(3);
    expect(show.stdout).toContain(LONG_REDACTED);
    expect(JSON.parse(showJson.stdout).redactedArgs).toEqual({ key: 'notes/today.txt', value: LONG_REDACTED, apiToken: '[redacted]' });
    for (const [where, run] of Object.entries({ list, listJson, show, showJson })) expectNoSecret(`approvals ${where}`, run.stdout);
  }, 60_000);

  it('tells them apart on the list page, and the detail page folds the long value whole into a <details>', async () => {
    const browser = new PageClient(h);
    await browser.login(KEYS.approver);
    const list = await browser.get('/approvals');
    expect(list.status).toBe(200);
    const cardOf = (id: string) => list.html.slice(list.html.lastIndexOf('<a class="card"', list.html.indexOf(`approvals/${id}"`)), list.html.indexOf('</a>', list.html.indexOf(`approvals/${id}"`)));
    expect(cardOf(ids.first)).toContain(FIRST.slice(0, 30));
    expect(cardOf(ids.second)).toContain(SECOND.slice(0, 30));
    expect(cardOf(ids.first)).not.toContain(SECOND.slice(0, 30));
    expectNoSecret('the list page', list.html);

    const detail = await browser.get(`/approvals/${ids.long}`);
    expect(detail.status).toBe(200);
    const folded = detail.html.match(/<details[^>]*>([\s\S]*?)<\/details>/)?.[1] ?? '';
    expect(folded).toContain('<summary>');
    expect(folded).toContain(LONG_REDACTED);
    expect(detail.html).toContain(`href="${ids.long}/arguments.json"`);
    expectNoSecret('the detail page', detail.html);
  });

  it('lets an approver of the tenant download the redacted arguments, and nobody else', async () => {
    const path = `/approvals/${ids.long}/arguments.json`;
    const alice = new PageClient(h);
    await alice.login(KEYS.approver);
    const download = await alice.get(path);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toMatch(/^application\/json/);
    expect(download.headers.get('content-disposition')).toBe(`attachment; filename="${ids.long}-arguments.json"`);
    expect(download.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(JSON.parse(download.html)).toEqual({ key: 'notes/today.txt', value: LONG_REDACTED, apiToken: '[redacted]' });
    expectNoSecret('the download', download.html);

    const zed = new PageClient(h); // an approver, of another tenant
    expect((await zed.login(KEYS.otherTenant)).status).toBe(303);
    const foreign = await zed.get(path);
    expect(foreign.status).toBe(403);
    expect(foreign.html).toContain('GH_ERR_FORBIDDEN');
    expect(foreign.html).not.toContain('lorem ipsum');

    const agent = new PageClient(h); // a tool caller: no approver role, so no session
    expect((await agent.login(KEYS.caller)).status).toBe(403);
    const anonymous = await agent.get(path);
    expect(anonymous.status).toBe(303);
    expect(anonymous.location).toBe(`../login?next=${ids.long}`);
    expect(anonymous.html).not.toContain('lorem ipsum');
    // The API is no back door: it wants an approver key, and another tenant's key is refused.
    expect((await api(h, `/api/approvals/${ids.long}`, { key: KEYS.caller })).status).toBe(403);
    expect((await api(h, `/api/approvals/${ids.long}`, { key: KEYS.otherTenant })).status).toBe(403);
  });

  it('keeps no secret in the approval records on disk', () => {
    const dir = join(h.dataDir, 'approvals');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(3);
    for (const file of files) expectNoSecret(file, readFileSync(join(dir, file), 'utf8'));
    expect(readFileSync(join(dir, `${ids.long}.json`), 'utf8')).toContain('END-OF-THE-LONG-VALUE');
  });

  it('serves the list at /approvals/ too (a trailing slash), keeping the query', async () => {
    const browser = new PageClient(h);
    await browser.login(KEYS.approver);
    const slash = await browser.get('/approvals/?state=all');
    expect(slash.status).toBe(308);
    const target = new URL(slash.location!, `${baseOf(h)}/approvals/?state=all`);
    expect(`${target.pathname}${target.search}`).toBe('/approvals?state=all');
    const list = await browser.get(`${target.pathname}${target.search}`);
    expect(list.status).toBe(200);
    expect(list.html).toContain(ids.first);
    // A proxy that serves Gatehouse under a prefix keeps it: the redirect is relative.
    expect(slash.location!.startsWith('/')).toBe(false);
  });
});
