import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../log.ts';
import { createEmbeddedGateway } from '../../runtime/embedded.ts';
import { serveHttp } from '../../gateway/http-front.ts';
import { serveStdio } from '../../gateway/stdio-front.ts';
import { flag, parseArgs } from '../args.ts';
import { redactUrl } from '../../config/redact-url.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import { DEFAULT_CONFIG_FILE } from '../state.ts';
import { localCaller } from './local-caller.ts';

export const START_HELP = `Usage: gatehouse start [--config FILE]

Starts the gateway from a config file (default ./gatehouse.yaml): Streamable HTTP at /mcp on listen.http
(127.0.0.1:8787 unless told otherwise), and MCP on stdio too when listen.stdio is true.`;

export async function runStart(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: ['config'] });
  const { config, file } = loadConfig(flag(args, 'config') ?? DEFAULT_CONFIG_FILE);
  const log = createLogger(config.log.level);
  // Distributed mode's adapters (NATS, Redis, protobuf) load only when used: embedded mode stays lean.
  const gateway = config.mode === 'distributed' ? await (await import('../../runtime/distributed.ts')).createDistributedGateway(config, log) : createEmbeddedGateway(config, log);
  const caller = localCaller();
  let http: Awaited<ReturnType<typeof serveHttp>> | undefined;
  if (config.listen.http) {
    const at = config.listen.http.lastIndexOf(':');
    const host = config.listen.http.slice(0, at).replace(/^\[|\]$/g, '');
    http = await serveHttp(
      gateway,
      {
        host,
        port: Number(config.listen.http.slice(at + 1)),
        maxMessageBytes: config.limits.maxMessageBytes,
        allowedHosts: config.listen.allowedHosts,
        allowedOrigins: config.listen.allowedOrigins,
        apiKeys: config.auth?.apiKeys ?? [],
        anonymous: caller,
      },
      log,
    );
  }
  if (http && !['127.0.0.1', 'localhost', '::1'].includes(new URL(http.url).hostname.replace(/^\[|\]$/g, '')) && !config.auth?.apiKeys.length) {
    log.warn(`listening on ${http.url} without auth.apiKeys: anyone who can reach this address can call every tool as ${caller.principal}`);
  }
  const stdio = config.listen.stdio ? serveStdio(gateway, { input: process.stdin, output: process.stdout, caller, maxMessageBytes: config.limits.maxMessageBytes }, log) : undefined;
  await gateway.start();
  process.on('SIGHUP', () => gateway.reloadPolicy('operator'));
  // With stdio serving MCP, stdout belongs to the protocol: the banner goes to stderr.
  (stdio ? console.error : console.log)(banner(file, http?.url, gateway));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    void stdio?.closed.then(resolve);
  });
  await http?.close();
  await gateway.stop();
  return 0;
}

function banner(configFile: string, url: string | undefined, gateway: Gateway): string {
  const upstreams = gateway.directory.all().map((u) => `${u.name} (${u.state})`).join(', ') || 'none';
  const { mode, dataDir, nats, redis } = gateway.config;
  const state = mode === 'distributed' ? `  mode: distributed (NATS ${redactUrl(nats!.url)}, Redis ${redactUrl(redis!.url)})` : `  data dir: ${dataDir}`;
  const lines = [`Gatehouse is running (config ${configFile})`, `  upstreams: ${upstreams}`, `  policy snapshot: ${gateway.kernel.snapshot}`, state];
  if (url) {
    lines.push(
      '',
      `MCP endpoint (Streamable HTTP): ${url}`,
      '',
      'Connect a client:',
      `  Claude Code:     claude mcp add --transport http gatehouse ${url}`,
      `  Claude Desktop:  add to claude_desktop_config.json → "mcpServers": { "gatehouse": { "command": "npx", "args": ["-y", "mcp-remote", "${url}"] } }`,
      `  MCP Inspector:   npx @modelcontextprotocol/inspector --transport http --server-url ${url}`,
      '',
      'Approvals:         gatehouse approvals list   (then: gatehouse approvals approve <id>)',
      'Audit:             gatehouse audit tail --follow',
    );
  }
  return lines.join('\n');
}
