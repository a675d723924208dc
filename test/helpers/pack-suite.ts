import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp, ROOT, startHarness, waitFor, type Harness } from './gateway-harness.ts';
import { loadPack, type Pack } from '../../src/packs/pack.ts';
import { BUNDLED_PACKS } from '../../src/packs/places.ts';
import { runPackTests } from '../../src/packs/pack-tests.ts';
import { loadPolicyBundle } from '../../src/packs/policy-bundle.ts';
import type { StdioUpstreamConfig } from '../../src/config/schema.ts';
import type { ToolDefinition } from '../../src/protocol/mcp.ts';

// A bundled pack against the real server package it was written for (a dev dependency), through a real gateway
// and a real SDK client over HTTP: the pack covers every tool the server lists, at the pinned definitions, its own
// tests pass, and the calls the issue names are decided as the pack says.

export const serverBin = (pkg: string) => join(ROOT, 'node_modules', pkg, 'dist/index.js');
export const stdio = (args: string[], env: Record<string, string> = {}): StdioUpstreamConfig => ({ command: process.execPath, args, env, cwd: ROOT, timeout: 60_000 });

export type Result = { isError?: boolean; content?: Array<{ text?: string }>; _meta?: Record<string, Record<string, unknown>> };
export const call = async (client: Client, name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as Result;
export const codeOf = (r: Result) => r._meta?.['gatehouse/error']?.code;
export const textOf = (r: Result) => (r.content ?? []).map((c) => c.text ?? '').join('\n');

/**
 * Every tool the server listed through the gateway is in tools.yaml with the same pinned digest, and no other
 * (`digest`: how the pack pins a definition, when the server's depends on the machine it runs on).
 */
function expectCovered(h: Harness, pack: Pack, upstream: string, digest?: (tool: ToolDefinition) => string): void {
  const listed = Object.fromEntries(h.gateway.catalog.entries().filter((e) => e.server === upstream).map((e) => [e.tool.name, digest ? digest(e.tool) : e.digest]));
  const pinned = Object.fromEntries(Object.entries(pack.tools.tools).map(([name, t]) => [name, t.digest]));
  expect(Object.keys(listed).length).toBeGreaterThan(0);
  expect(listed).toEqual(pinned);
}

function expectOwnTestsPass(pack: Pack): void {
  const { report } = runPackTests(pack);
  expect(report.results.length).toBeGreaterThan(0);
  expect(report.results.filter((r) => !r.passed).map((r) => `${r.case.name}: got ${r.effect} ${r.code ?? ''} ${r.ruleIds.join(',')}`)).toEqual([]);
}

/** The pack's real server as an upstream, the install's parameters, and what to undo after. */
export interface PackServer {
  upstream: StdioUpstreamConfig;
  params: Record<string, unknown>;
  cleanup?: () => void | Promise<void>;
  /** How the pack pins a definition, when the server's own depends on the machine (see expectCovered). */
  digest?: (tool: ToolDefinition) => string;
}

/**
 * A gateway with no policy but the pack, in front of the pack's real server; the pack covers every tool the server
 * lists and passes its own tests; then the suite's cases, with a connected client.
 */
export function packSuite(
  name: string,
  server: () => PackServer | Promise<PackServer>,
  cases: (ctx: { client: () => Client; harness: () => Harness }) => void,
  options: { skip?: string } = {},
): void {
  describe.skipIf(options.skip !== undefined)(`the ${name} pack in front of its real server`, () => {
    const pack = loadPack(join(BUNDLED_PACKS, name));
    const upstreamName = pack.manifest.upstream.name;
    let h: Harness;
    let client: Client;
    let started: PackServer | undefined;
    beforeAll(async () => {
      started = await server();
      const { upstream, params } = started;
      h = await startHarness({ policies: [], upstreams: { [upstreamName]: upstream }, packs: [{ name, params }] });
      await waitFor(() => h.gateway.catalog.entries().some((e) => e.server === upstreamName), `the ${name} tools`);
      client = await connectHttp(h.url);
    }, 60_000);
    afterAll(async () => {
      await client?.close();
      await h?.close();
      await started?.cleanup?.();
    });

    it('covers every tool the server lists, at the pinned definitions', () => expectCovered(h, pack, upstreamName, started?.digest));
    it("passes the pack's own tests", () => expectOwnTestsPass(pack));
    it('names the pack in the snapshot every decision carries, and in GET /api/policy', async () => {
      expect(h.gateway.kernel.snapshot).toBe(loadPolicyBundle([], [{ name, params: started!.params }], { search: [BUNDLED_PACKS] }).snapshot);
      const shown = (await (await fetch(h.url.replace(/\/mcp$/, '/api/policy'))).json()) as { policy: { snapshot: string; packs?: unknown } };
      expect(shown.policy.snapshot).toBe(h.gateway.kernel.snapshot);
      expect(shown.policy.packs).toEqual([{ name, version: pack.manifest.version, digest: pack.digest, upstream: upstreamName }]);
    });
    cases({ client: () => client, harness: () => h });
  });
}
