import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, ROOT, startHarness, type Harness } from '../helpers/gateway-harness.ts';

const bin = (pkg: string) => join(ROOT, 'node_modules', pkg, 'dist/index.js');

describe('in front of the real reference servers', () => {
  let h: Harness;
  const workspace = mkdtempSync(join(tmpdir(), 'gh-fs-'));
  beforeAll(async () => {
    writeFileSync(join(workspace, 'hello.txt'), 'hello from disk');
    h = await startHarness({
      upstreams: {
        everything: { command: process.execPath, args: [bin('@modelcontextprotocol/server-everything'), 'stdio'], env: {}, cwd: ROOT, timeout: 60_000 },
        files: { command: process.execPath, args: [bin('@modelcontextprotocol/server-filesystem'), workspace], env: {}, cwd: ROOT, timeout: 60_000 },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('aggregates both servers under namespaced names', async () => {
    const client = await connectHttp(h.url);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['everything__echo', 'files__read_text_file', 'files__write_file']));
    for (const name of names) expect(name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    await client.close();
  });

  it('runs server-everything tools through the governed path', async () => {
    const client = await connectHttp(h.url);
    const echo = await client.callTool({ name: 'everything__echo', arguments: { message: 'hi' } });
    expect(JSON.stringify(echo.content)).toContain('hi');
    expect((echo._meta as Record<string, any>)['gatehouse/job'].jobId).toMatch(/^[0-9A-Z]{26}$/);
    await client.close();
  });

  it('reads through server-filesystem and holds its destructive writes for approval', async () => {
    const client = await connectHttp(h.url);
    const read = await client.callTool({ name: 'files__read_text_file', arguments: { path: join(workspace, 'hello.txt') } });
    expect(JSON.stringify(read.content)).toContain('hello from disk');
    const target = join(workspace, 'new.txt');
    // server-filesystem marks write_file destructiveHint: true, so the default policy holds it.
    const write = await client.callTool({ name: 'files__write_file', arguments: { path: target, content: 'x' } });
    expect(JSON.stringify(write.content)).toContain('GH_ERR_APPROVAL_PENDING');
    expect(() => readFileSync(target)).toThrow();
    await client.close();
  });

  it('forwards resources and prompts from server-everything', async () => {
    const client = await connectHttp(h.url);
    const { resources } = await client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    const read = await client.readResource({ uri: resources[0].uri });
    expect(read.contents.length).toBeGreaterThan(0);
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name).every((n) => n.startsWith('everything__'))).toBe(true);
    await client.close();
  });
});
