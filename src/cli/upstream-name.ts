import { basename, dirname, extname, resolve } from 'node:path';

/**
 * How a launcher runs the server: the subcommands before its subject (`npm exec`, `docker run`), its options that
 * take a value (skipped with it), and what the subject is: a package, a script file, a container image.
 */
interface Launcher {
  subject: 'package' | 'script' | 'image';
  subcommands?: string[];
  valueOptions: string[];
  /** Options whose value is code to run (`node -e`): no subject follows, the launcher names itself. */
  codeOptions?: string[];
}

const NODE_OPTIONS = ['-r', '--require', '--import', '--loader', '--experimental-loader', '-C', '--conditions', '--env-file', '--input-type', '--inspect-port', '--title', '--watch-path', '--stack-size'];
const NPM_OPTIONS = ['-p', '--package', '--registry', '--cache', '--userconfig', '-w', '--workspace', '--prefix'];
const PYTHON: Launcher = { subject: 'script', valueOptions: ['-W', '-X', '-Q'], codeOptions: ['-c'] };
const NODE: Launcher = { subject: 'script', valueOptions: NODE_OPTIONS, codeOptions: ['-e', '--eval', '-p', '--print'] };
const UV_OPTIONS = ['--with', '--from', '--directory', '--project', '--python', '-p', '--env-file', '--index', '--index-url', '--extra-index-url'];
const CONTAINER: Launcher = {
  subject: 'image',
  subcommands: ['run'],
  valueOptions: ['-e', '--env', '--env-file', '-v', '--volume', '--mount', '--name', '--network', '-p', '--publish', '-w', '--workdir', '-u', '--user', '--entrypoint', '-l', '--label', '--platform', '--pull', '--add-host', '--cpus', '-m', '--memory', '-h', '--hostname'],
};

const LAUNCHERS: Record<string, Launcher> = {
  npx: { subject: 'package', valueOptions: [...NPM_OPTIONS, '-c', '--call'] },
  npm: { subject: 'package', subcommands: ['exec', 'x'], valueOptions: [...NPM_OPTIONS, '-c', '--call'] },
  pnpm: { subject: 'package', subcommands: ['dlx', 'exec'], valueOptions: NPM_OPTIONS },
  yarn: { subject: 'package', subcommands: ['dlx', 'exec'], valueOptions: NPM_OPTIONS },
  bunx: { subject: 'package', valueOptions: NPM_OPTIONS },
  uvx: { subject: 'package', valueOptions: UV_OPTIONS },
  pipx: { subject: 'package', subcommands: ['run'], valueOptions: ['--spec', '--python', '--index-url'] },
  uv: { subject: 'script', subcommands: ['run', 'tool'], valueOptions: UV_OPTIONS },
  node: NODE,
  nodejs: NODE,
  tsx: NODE,
  'ts-node': NODE,
  bun: { subject: 'script', subcommands: ['run', 'x'], valueOptions: NODE_OPTIONS, codeOptions: ['-e', '--eval'] },
  deno: { subject: 'script', subcommands: ['run'], valueOptions: ['-c', '--config', '--import-map', '--location', '--seed', '--v8-flags'], codeOptions: ['--eval'] },
  python: PYTHON,
  python3: PYTHON,
  pypy3: PYTHON,
  docker: CONTAINER,
  podman: CONTAINER,
};

/** Files whose name says nothing about the server: its folder does. */
const GENERIC_FILES = new Set(['index', 'main', 'server', 'cli', 'app', 'mod', 'start', 'run', '__main__', '__init__']);
/** Folders a build or a layout puts the entry file in: the project's folder above says more. */
const GENERIC_DIRS = new Set(['dist', 'build', 'lib', 'out', 'src', 'bin', 'scripts', 'esm', 'cjs']);
/** What half the MCP servers' names carry: `server-filesystem`, `mcp-server-fetch`, `github-mcp-server`. */
const AFFIXES = [/^mcp-server-/, /^server-/, /^mcp-/, /-mcp-server$/, /-server-mcp$/, /-mcp$/, /-server$/];

/**
 * A readable upstream name for `gatehouse wrap CMD ARGS…`, within the upstream-name rules (1-24 letters, digits or
 * dashes): the package an npx-like launcher runs (without scope or version), the module of `python -m`, an image's
 * name, or a script's file name, or its project folder's when the file is an index, main, server or cli. Launcher
 * options and their values are skipped; `node -e …` is `node`.
 */
export function upstreamNameFor(command: string, args: readonly string[], cwd: string = process.cwd()): string {
  const program = basename(command).replace(/\.(exe|cmd)$/i, '');
  const launcher = LAUNCHERS[program] ?? LAUNCHERS[program.replace(/[\d.]+$/, '')];
  const raw = launcher ? subjectName(launcher, args, cwd) ?? program : scriptName(command, cwd);
  return cleanName(raw) || cleanName(program) || 'upstream';
}

function subjectName(launcher: Launcher, args: readonly string[], cwd: string): string | undefined {
  const subject = subjectOf(launcher, args);
  if (!subject) return undefined;
  const arg = args[subject.index];
  if (subject.module) return moduleName(arg);
  if (launcher.subject === 'package') return packageName(arg);
  if (launcher.subject === 'image') return imageName(arg);
  return /^(npm|jsr):/.test(arg) ? packageName(arg) : scriptName(arg, cwd);
}

/** Where in args the launcher's subject is (a package, script, image, or `python -m`'s module); none for code. */
function subjectOf(launcher: Launcher, args: readonly string[]): { index: number; module?: boolean } | undefined {
  let i = 0;
  while (i < args.length && launcher.subcommands?.includes(args[i])) i++;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') continue;
    if (launcher.codeOptions?.includes(arg)) return undefined;
    if (arg === '-m' && launcher === PYTHON) return args[i + 1] === undefined ? undefined : { index: i + 1, module: true };
    if (arg.startsWith('-')) {
      if (!arg.includes('=') && launcher.valueOptions.includes(arg)) i++;
      continue;
    }
    return { index: i };
  }
  return undefined;
}

/**
 * The npm package a command runs, without its version, and where it is in args: what an npx-like launcher runs,
 * or the package a script lies in (`node node_modules/@scope/pkg/dist/index.js`). What packs match on.
 */
export function launchedPackage(command: string, args: readonly string[]): { name: string; index: number } | undefined {
  const program = basename(command).replace(/\.(exe|cmd)$/i, '');
  const launcher = LAUNCHERS[program] ?? LAUNCHERS[program.replace(/[\d.]+$/, '')];
  const subject = launcher && subjectOf(launcher, args);
  if (!subject || subject.module || launcher.subject === 'image') return undefined;
  const arg = args[subject.index];
  if (launcher.subject === 'package' || /^npm:/.test(arg)) {
    return { name: unversionedPackage(arg), index: subject.index };
  }
  const inModules = /(?:^|[\\/])node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(arg);
  return inModules ? { name: inModules[1].replace(/\\/g, '/'), index: subject.index } : undefined;
}

/** `@scope/name@1.2.3` → `name`; `npm:` and `jsr:` specifiers too. */
function packageName(spec: string): string {
  const unversioned = unversionedPackage(spec);
  return unversioned.slice(unversioned.lastIndexOf('/') + 1);
}

/** `npm:@scope/name@1.2.3` → `@scope/name`. */
function unversionedPackage(spec: string): string {
  const bare = spec.replace(/^(npm|jsr):/, '');
  return bare.startsWith('@') ? bare.replace(/^(@[^/]+\/[^@]+)@.*$/, '$1') : bare.replace(/@.*$/, '');
}

/** `ghcr.io/org/name:tag@sha256:…` → `name`. */
function imageName(image: string): string {
  const path = image.replace(/@.*$/, '');
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last.replace(/:.*$/, '');
}

/** `notes.server` → `notes`: the last part of a dotted module that is not a generic entry name. */
function moduleName(module: string): string {
  const parts = module.split('.').filter((p) => !GENERIC_FILES.has(p));
  return parts.at(-1) ?? module;
}

/** A script's name, or its project's folder when the file is a generic entry point (`dist/index.js`). */
function scriptName(file: string, cwd: string): string {
  const path = resolve(cwd, file);
  const own = basename(path, extname(path));
  if (!GENERIC_FILES.has(own.toLowerCase())) return own;
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) {
    if (!GENERIC_DIRS.has(basename(dir).toLowerCase())) return basename(dir);
  }
  return own;
}

function cleanName(raw: string): string {
  let name = raw
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '');
  for (const affix of AFFIXES) {
    const shorter = name.replace(new RegExp(affix.source, 'i'), '');
    if (shorter.length >= 3) name = shorter;
  }
  return name.slice(0, 24).replace(/-+$/, '');
}
