/**
 * What runs against what: the servers to start, the (target, era) scenarios the load generator drives, and
 * which baseline each Gatehouse variant is compared with.
 */
import { McpHttpClient, type Era } from './http-client.ts';
import type { Settings } from './settings.ts';
import * as targets from './targets.ts';
import type { HttpTarget, StdioTarget } from './targets.ts';

export interface Scenario {
  key: string;
  label: string;
  era: Era;
  target: HttpTarget;
  client: McpHttpClient;
}

export interface Comparison {
  variant: string;
  gatehouse: string;
  direct: string;
  proxy?: string;
  /** The variant contains the whole direct path plus a hop, so the targets cannot apply: print, don't judge. */
  informational?: boolean;
  /** The same Gatehouse in front of a stdio upstream: what its CPU per call in front of an HTTP upstream is held to. */
  stdioUpstream?: string;
}

export interface Lineup {
  scenarios: Scenario[];
  stdio: StdioTarget[];
  /** Every server process (and two empty Node processes) whose RSS is reported. */
  processes: { label: string; pid: number }[];
  comparisons: Comparison[];
  stop(): Promise<void>;
}

export async function startLineup(settings: Settings, workDir: string): Promise<Lineup> {
  const stoppers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stoppers.splice(0).reverse()) await s().catch(() => undefined);
  };
  const track = <T extends { stop(): Promise<void> }>(p: Promise<T>) => p.then((t) => (stoppers.push(() => t.stop()), t));
  const legacy = settings.eras.includes('legacy');
  const modern = settings.eras.includes('modern');
  try {
    const [direct, handler, upstreamHttp, proxy, directStdio, relay, jsonRelay, wrap, bareNode, tsxNode] = await Promise.all([
      legacy ? track(targets.startDirectHttp('direct', 'direct: SDK sessionful HTTP server, JSON', 'http')) : undefined,
      modern ? track(targets.startDirectHttp('direct-handler', 'direct: SDK createMcpHandler', 'handler')) : undefined,
      // Gatehouse's HTTP upstream is a server of its own, so the baseline's sessions never share it.
      legacy ? track(targets.startDirectHttp('upstream-http', 'SDK HTTP server behind gatehouse-http', 'http')) : undefined,
      track(targets.startMcpProxy('mcp-proxy', 'mcp-proxy --no-eventStore → stdio upstream')),
      track(targets.startDirectStdio('direct-stdio', 'direct: stdio server')),
      track(targets.startNullRelay('null-relay', 'reference: byte-copying relay → stdio upstream')),
      track(targets.startNullRelay('json-relay', 'reference: JSON-parsing relay → stdio upstream', 'json')),
      track(targets.startGatehouseWrap('gatehouse-wrap', 'gatehouse wrap → stdio upstream', workDir)),
      track(targets.startIdleNode('node', 'reference: empty node process', false)),
      track(targets.startIdleNode('node-tsx', 'reference: empty node --import tsx', true)),
    ]);
    // The stdio hop as hosts see it: each official SDK client spawning the server, and wrap, itself.
    const sdkStdio = [];
    for (const [line, name] of [['sdk1', '@modelcontextprotocol/sdk 1.x'], ['sdk2', '@modelcontextprotocol/client 2.x']] as const) {
      sdkStdio.push(await track(targets.startSdkStdio(`direct-stdio-${line}`, `direct: stdio server, ${name} client`, line, 'direct', workDir)));
      sdkStdio.push(await track(targets.startSdkStdio(`gatehouse-wrap-${line}`, `gatehouse wrap, ${name} client`, line, 'wrap', workDir)));
    }
    const [allow, constrained, viaHttp, modernUp] = await Promise.all([
      track(targets.startGatehouseHttp('gatehouse', 'Gatehouse allow → stdio upstream', { policy: targets.ALLOW_POLICY, workDir })),
      legacy ? track(targets.startGatehouseHttp('gatehouse-constrained', 'Gatehouse allow_with_constraints → stdio', { policy: targets.CONSTRAINED_POLICY, workDir })) : undefined,
      upstreamHttp ? track(targets.startGatehouseHttp('gatehouse-http', 'Gatehouse allow → HTTP upstream', { policy: targets.ALLOW_POLICY, workDir, upstreamUrl: upstreamHttp.url })) : undefined,
      track(targets.startGatehouseHttp('gatehouse-modern-up', 'Gatehouse allow → 2026-07-28 stdio upstream', { policy: targets.ALLOW_POLICY, workDir, modernUpstream: true })),
    ]);

    const connections = Math.max(...settings.concurrency);
    const scenarios: Scenario[] = [];
    const add = async (key: string, era: Era, target: HttpTarget) => {
      const client = new McpHttpClient(target.url, era, connections);
      stoppers.push(() => client.close());
      await client.connect();
      scenarios.push({ key, label: target.label, era, target, client });
    };
    if (legacy) {
      await add('direct', 'legacy', direct!);
      await add('gatehouse', 'legacy', allow);
      await add('gatehouse-constrained', 'legacy', constrained!);
      await add('gatehouse-http', 'legacy', viaHttp!);
      await add('mcp-proxy', 'legacy', proxy);
      await add('gatehouse-modern-up', 'legacy', modernUp);
    }
    if (modern) {
      await add('direct-modern', 'modern', handler!);
      await add('gatehouse-modern', 'modern', allow);
      await add('mcp-proxy-modern', 'modern', proxy);
      await add('gatehouse-modern-up-modern', 'modern', modernUp);
    }

    const servers = [direct, handler, upstreamHttp, allow, constrained, viaHttp, modernUp, proxy, directStdio, relay, jsonRelay, wrap, ...sdkStdio, bareNode, tsxNode];
    return {
      scenarios,
      stdio: [directStdio, relay, jsonRelay, wrap, ...sdkStdio],
      processes: servers.filter((s) => s !== undefined).map((s) => ({ label: s.label, pid: s.pid })),
      comparisons: [
        { variant: 'HTTP 2025: allow, stdio upstream', gatehouse: 'gatehouse', direct: 'direct', proxy: 'mcp-proxy' },
        { variant: 'HTTP 2025: allow_with_constraints', gatehouse: 'gatehouse-constrained', direct: 'direct', proxy: 'mcp-proxy' },
        { variant: 'HTTP 2025: allow, HTTP upstream', gatehouse: 'gatehouse-http', direct: 'direct', informational: true, stdioUpstream: 'gatehouse' },
        { variant: 'HTTP 2026: allow, stdio upstream', gatehouse: 'gatehouse-modern', direct: 'direct-modern', proxy: 'mcp-proxy-modern' },
        // The same upstream code spoken to in 2026-07-28 (envelope on every request): against the 2025 rows above.
        { variant: 'HTTP 2025: allow, 2026-07-28 stdio upstream', gatehouse: 'gatehouse-modern-up', direct: 'direct', informational: true },
        { variant: 'HTTP 2026: allow, 2026-07-28 stdio upstream', gatehouse: 'gatehouse-modern-up-modern', direct: 'direct-modern', informational: true },
      ],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
