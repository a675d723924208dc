import { describe, expect, it } from 'vitest';
import type { Upstream } from '../../src/ports.ts';

export interface UpstreamFixture {
  upstream: Upstream;
  /** The serverInfo the server answers initialize with. */
  serverInfo: { name: string; version: string };
  /** A quick tool and the text it answers. */
  echo: { name: string; arguments: Record<string, unknown>; text: string };
  /** A tool that reports progress, and one slow enough to time out or cancel. */
  progress: { name: string; arguments: Record<string, unknown> };
  /** `timeoutMs` is well under the tool's running time. */
  slow: { name: string; arguments: Record<string, unknown>; timeoutMs: number };
  stop(): Promise<void>;
}

/** What every Upstream adapter must do, against a real server of its kind. */
export function runUpstreamContract(name: string, makeFixture: () => Promise<UpstreamFixture>): void {
  describe(`Upstream contract: ${name}`, () => {
    const started = async () => {
      const fixture = await makeFixture();
      await fixture.upstream.start({});
      expect(fixture.upstream.state).toBe('ready');
      return fixture;
    };

    it('connects, lists tools and calls one', async () => {
      const f = await started();
      expect(f.upstream.serverCapabilities?.tools).toBeDefined();
      // Who the server says it is: what a pack's match.serverNames is compared with.
      expect(f.upstream.serverInfo).toEqual(f.serverInfo);
      const { tools } = (await f.upstream.request('tools/list', undefined, { timeoutMs: 10_000 })) as { tools: { name: string }[] };
      expect(tools.map((t) => t.name)).toContain(f.echo.name);
      const result = (await f.upstream.request('tools/call', { name: f.echo.name, arguments: f.echo.arguments }, { timeoutMs: 10_000 })) as { content: { text: string }[] };
      expect(result.content[0].text).toBe(f.echo.text);
      await f.stop();
    });

    it('delivers progress to the request that asked for it', async () => {
      const f = await started();
      const seen: number[] = [];
      await f.upstream.request('tools/call', { name: f.progress.name, arguments: f.progress.arguments }, { timeoutMs: 10_000, onProgress: (p) => seen.push(p.progress) });
      expect(seen.length).toBeGreaterThan(0);
      await f.stop();
    });

    it('times out with GH_ERR_UPSTREAM_TIMEOUT and cancels with GH_ERR_CANCELLED', async () => {
      const f = await started();
      const call = () => f.upstream.request('tools/call', { name: f.slow.name, arguments: f.slow.arguments }, { timeoutMs: f.slow.timeoutMs });
      await expect(call()).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_TIMEOUT' });
      const controller = new AbortController();
      const cancelled = f.upstream.request('tools/call', { name: f.slow.name, arguments: f.slow.arguments }, { timeoutMs: 10_000, signal: controller.signal });
      setTimeout(() => controller.abort('enough'), f.slow.timeoutMs / 2);
      await expect(cancelled).rejects.toMatchObject({ code: 'GH_ERR_CANCELLED' });
      // The connection is still good afterwards.
      await expect(f.upstream.request('tools/list', undefined, { timeoutMs: 10_000 })).resolves.toBeDefined();
      await f.stop();
    });

    it("passes the upstream's JSON-RPC errors on, coded", async () => {
      const f = await started();
      await expect(f.upstream.request('no/such/method', {}, { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_ERROR', data: { rpcError: { code: -32601 } } });
      await f.stop();
    });

    it('refuses requests once closed', async () => {
      const f = await started();
      await f.upstream.close();
      expect(f.upstream.state).toBe('closed');
      await expect(f.upstream.request('tools/list', undefined)).rejects.toMatchObject({ code: 'GH_ERR_UPSTREAM_UNAVAILABLE' });
      await f.stop();
    });
  });
}
