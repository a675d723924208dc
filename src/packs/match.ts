import { basename, resolve } from 'node:path';
import type { Pack } from './pack.ts';
import type { ParamValue } from './params.ts';

/** What is known of an upstream before it runs: the npm package its command runs (if any) and the command. */
export interface LaunchedServer {
  command: string;
  args: readonly string[];
  /** The package and its index in args (see the CLI's `launchedPackage`). */
  package?: { name: string; index: number };
}

/** What is known of an upstream once it runs: the `serverInfo.name` of its initialize answer and the tools it lists. */
export interface InitialisedServer {
  serverName?: string;
  /** The server's own tool names (not namespaced). */
  tools: readonly string[];
}

/** Whether a pack's `match` fits the server by its package or its command's name. */
export function packFits(pack: Pack, server: LaunchedServer): boolean {
  const { packages, commands } = pack.manifest.match;
  return (server.package !== undefined && packages.includes(server.package.name)) || commands.includes(basename(server.command));
}

/**
 * How a pack's `match` fits a running server: by its serverInfo name, or by listing every tool of `match.tools`;
 * undefined when it does not. A name alone is weak (any server may call itself anything), which is why a match
 * only proposes a pack: what the pack's rules decide is checked against the same tool list.
 */
export function initialisedFit(pack: Pack, server: InitialisedServer): 'serverName' | 'tools' | undefined {
  const { serverNames, tools } = pack.manifest.match;
  if (server.serverName !== undefined && serverNames.includes(server.serverName)) return 'serverName';
  const listed = new Set(server.tools);
  if (tools.length > 0 && tools.every((tool) => listed.has(tool))) return 'tools';
  return undefined;
}

/** How a running server fits a pack, in words (`its serverInfo name, Playwright`); undefined when it does not. */
export function fitInWords(pack: Pack, server: InitialisedServer): string | undefined {
  const fit = initialisedFit(pack, server);
  return fit && (fit === 'serverName' ? `its serverInfo name, ${server.serverName}` : 'the tools it lists');
}

/** Whether a pack's `match` states anything a running server can be checked against (serverNames or tools). */
export const matchesInitialised = (pack: Pack): boolean => pack.manifest.match.serverNames.length > 0 || pack.manifest.match.tools.length > 0;

/**
 * The install parameters a server's own command line states, read against the pack's `upstream.args` template:
 * after the package, each template argument that is only `${param:NAME}` takes the argument in the same place
 * (a `path` parameter resolved against `cwd`, as the server would). `npx … server-filesystem /work` gives
 * `workspace: /work`.
 */
export function paramsFromCommand(pack: Pack, server: LaunchedServer, cwd: string): Record<string, ParamValue> {
  const template = pack.manifest.upstream.args;
  const at = template.findIndex((arg) => pack.manifest.match.packages.some((p) => arg === p || arg.startsWith(`${p}@`)));
  if (at < 0 || !server.package) return {};
  const params: Record<string, ParamValue> = {};
  const given = server.args.slice(server.package.index + 1);
  template.slice(at + 1).forEach((arg, i) => {
    const name = /^\$\{param:([A-Za-z0-9_]+)\}$/.exec(arg)?.[1];
    const value = given[i];
    if (!name || value === undefined) return;
    params[name] = pack.manifest.params[name]?.type === 'path' ? resolve(cwd, value) : value;
  });
  return params;
}
