import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPack } from '../../src/packs/pack.ts';
import { loadPolicyBundle, type LocatedInstall } from '../../src/packs/policy-bundle.ts';
import { BUNDLED_PACKS, packPlaces } from '../../src/packs/places.ts';
import { runPackTests } from '../../src/packs/pack-tests.ts';
import { writeInstalled } from '../../src/packs/installed.ts';
import { loadDeploymentPolicy, deploymentPolicyFiles } from '../../src/packs/deployment.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { PolicyReloader } from '../../src/kernel/policy-reloader.ts';
import { defaultConfig, loadConfig } from '../../src/config/load.ts';
import { ROOT } from '../helpers/gateway-harness.ts';
import { silentLogger } from '../../src/log.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import { satisfies } from '../../src/packs/version-range.ts';
import { initialisedFit, packFits, paramsFromCommand } from '../../src/packs/match.ts';
import { launchedPackage } from '../../src/cli/upstream-name.ts';
import { coded } from '../helpers/coded-errors.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';
import { verdictOf } from '../../src/kernel/verdict.ts';
import { CallLimits } from '../../src/enforcement/call-limits.ts';
import { MemoryStore } from '../../adapters/memory/store.ts';
import { AdvancingClock } from '../helpers/gateway-harness.ts';

const FILESYSTEM = join(BUNDLED_PACKS, 'filesystem');
const WS = { workspace: '/srv/ws' };
const noPlaces = { search: [BUNDLED_PACKS] };

/** A copy of the filesystem pack with one file rewritten, to break it in one place. */
function brokenPack(file: string, edit: (text: string) => string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'gh-pack-')), 'filesystem');
  cpSync(FILESYSTEM, dir, { recursive: true });
  writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
  return dir;
}

const load = (installs: LocatedInstall[], paths: string[] = []) => loadPolicyBundle(paths, installs, noPlaces);
/** The problems of a load that must fail: each with its file and line. */
const problemsOf = (fn: () => unknown): Array<{ file: string; line?: number; path: unknown[]; message: string }> => {
  try {
    fn();
  } catch (err) {
    expect(err).toEqual(coded('GH_ERR_POLICY_INVALID'));
    return (err as { data: { problems: never[] } }).data.problems;
  }
  throw new Error('expected the load to fail');
};
const lineOf = (file: string, text: string) => readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1;

describe('packs: the format and the loader', () => {
  it('installs the bundled filesystem pack for an upstream: rules scoped to it, tool facts from tools.yaml, path arguments named', () => {
    const bundle = load([{ name: 'filesystem', upstream: 'files', params: WS }]);
    const ids = bundle.rules.map((r) => r.id);
    expect(ids).toEqual(['filesystem/changes-need-approval', 'filesystem/inside-workspace', 'filesystem/read-cap']);
    for (const rule of bundle.rules) expect(rule.match.servers).toEqual(['files']);
    // tools.yaml's facts become the bundle's overrides of the upstream's tools, so the kernel decides on them.
    expect(bundle.tools['files__move_file']).toEqual({ annotations: { destructiveHint: true }, riskTags: ['fs-delete', 'fs-write'] });
    expect(bundle.tools['files__read_text_file']).toEqual({ riskTags: ['fs-read'] });
    // The path constraint looks exactly at the arguments tools.yaml says hold paths.
    const paths = bundle.rules.find((r) => r.id === 'filesystem/inside-workspace')!.constraints!.paths![0];
    expect(paths.args).toEqual(['destination', 'path', 'paths', 'source']);
    expect(paths.allow).toEqual(['/srv/ws', '/srv/ws/**']);
    expect(bundle.rules.find((r) => r.id === 'filesystem/read-cap')!.constraints!.maxOutputBytes).toBe(1048576);
    expect(bundle.files).toEqual(['filesystem@1.0.0/policies/filesystem.yaml', 'filesystem@1.0.0/tools.yaml']);
  });

  it('decides with the pack: a read in the workspace runs, a write waits, a key or a traversal is refused', () => {
    const kernel = new Kernel(load([{ name: 'filesystem', upstream: 'files', params: WS }]));
    const decide = (tool: string, args: Record<string, unknown>) => kernel.decide({ tenant: 'default', principal: 'p', server: 'files', tool: `files__${tool}`, annotations: undefined, args }).effect;
    expect(decide('read_text_file', { path: '/srv/ws/a.md' })).toBe('allow_with_constraints');
    expect(decide('write_file', { path: '/srv/ws/a.md', content: '' })).toBe('require_approval');
  });

  it("can never loosen the deployment's policy: a base denial or approval stands beside the pack's allow", () => {
    const base = join(mkdtempSync(join(tmpdir(), 'gh-pack-base-')), 'base.yaml');
    writeFileSync(
      base,
      [
        'version: 2',
        'default: deny',
        'rules:',
        '  - { id: no-reads-here, match: { tools: [files__read_text_file] }, effect: deny, reason: base denies }',
        '  - { id: ask-for-lists, match: { tools: [files__list_directory] }, effect: require_approval, reason: base asks }',
      ].join('\n'),
    );
    const kernel = new Kernel(load([{ name: 'filesystem', upstream: 'files', params: WS }], [base]));
    const decide = (tool: string, args: Record<string, unknown>) => kernel.decide({ tenant: 'default', principal: 'p', server: 'files', tool: `files__${tool}`, annotations: undefined, args }).effect;
    // The pack alone allows both (inside the workspace); the base's stricter effects win.
    expect(new Kernel(load([{ name: 'filesystem', upstream: 'files', params: WS }])).decide({ tenant: 'default', principal: 'p', server: 'files', tool: 'files__read_text_file', annotations: undefined, args: { path: '/srv/ws/a.md' } }).effect).toBe('allow_with_constraints');
    expect(decide('read_text_file', { path: '/srv/ws/a.md' })).toBe('deny');
    expect(decide('list_directory', { path: '/srv/ws' })).toBe('require_approval');
  });

  it("under the default policy, the browser pack's corrected annotations let navigation and hovering run; a click still waits", () => {
    const kernel = new Kernel(load([{ name: 'browser', upstream: 'web', params: { allowHosts: ['docs.example.com'] } }], [join(ROOT, 'policies', 'default.yaml')]));
    // What the server declares for every tool that is not a read.
    const declared = { readOnlyHint: false, destructiveHint: true, openWorldHint: true };
    const decide = (tool: string, args: Record<string, unknown>) => kernel.decide({ tenant: 'default', principal: 'p', server: 'web', tool: `web__${tool}`, annotations: declared, args }).effect;
    expect(decide('browser_navigate', { url: 'https://docs.example.com/' })).toBe('allow_with_constraints');
    expect(decide('browser_hover', { element: 'menu', target: 'e1' })).toBe('allow_with_constraints');
    expect(decide('browser_click', { element: 'Delete', target: 'e2' })).toBe('require_approval');
    expect(decide('browser_run_code_unsafe', { code: '1' })).toBe('deny');
  });

  it("puts every pack's name, version and digest in the bundle and its snapshot", () => {
    const pack = loadPack(FILESYSTEM);
    const bundle = load([{ name: 'filesystem', upstream: 'files', params: WS }]);
    expect(bundle.packs).toEqual([{ name: 'filesystem', version: '1.0.0', digest: pack.digest, upstream: 'files' }]);
    // A change to any file of the pack, even one no rule reads, is a new digest and so a new snapshot.
    const edited = brokenPack('tools.yaml', (t) => `${t}\n# a comment\n`);
    expect(loadPack(edited).digest).not.toBe(pack.digest);
    expect(load([{ name: edited, upstream: 'files', params: WS }]).snapshot).not.toBe(bundle.snapshot);
    // The same contents elsewhere on disk are the same pack.
    expect(loadPack(brokenPack('pack.yaml', (t) => t)).digest).toBe(pack.digest);
  });

  it('fills parameters with their defaults and as CEL literals in conditions, so a value cannot change a condition', () => {
    const allow = load([{ name: 'filesystem', upstream: 'files', params: { ...WS, writes: 'allow', maxReadBytes: 4096, protect: ['**/secrets/**'] } }]);
    const rule = (id: string) => allow.rules.find((r) => r.id === id)!;
    expect(rule('filesystem/changes-need-approval').when).toBe('"allow" == "approval"');
    expect(rule('filesystem/read-cap').constraints!.maxOutputBytes).toBe(4096);
    expect(rule('filesystem/inside-workspace').constraints!.paths![0].deny).toContain('**/secrets/**');
  });

  it("runs the bundled pack's own tests green", () => {
    const { report } = runPackTests(loadPack(FILESYSTEM));
    expect(report.results.filter((r) => !r.passed).map((r) => r.case.name)).toEqual([]);
    expect(report.results.length).toBeGreaterThan(10);
  });

  it("lets github writes run within writesPerHour per principal, a window later again, and held calls count nothing", async () => {
    const kernel = new Kernel(load([{ name: 'github', params: { writesPerHour: 2 } }]));
    const clock = new AdvancingClock();
    const limits = new CallLimits(new MemoryStore(clock), clock, silentLogger);
    const decide = (tool: string, principal: string, args: Record<string, unknown> = {}) => kernel.decide({ tenant: 'default', principal, server: 'github', tool: `github__${tool}`, annotations: undefined, args });
    const write = async (principal: string) => (await limits.count('take', decide('add_issue_comment', principal), { tenant: 'default', principal }, 'github__add_issue_comment'))?.code;
    // An approving review is held; holding it uses up nothing (peek), so the writes after it still have the whole limit.
    const review = decide('create_pull_request_review', 'agent', { event: 'APPROVE' });
    expect(review.effect).toBe('require_approval');
    expect(await limits.count('peek', review, { tenant: 'default', principal: 'agent' }, 'github__create_pull_request_review')).toBeUndefined();
    expect([await write('agent'), await write('agent'), await write('agent')]).toEqual([undefined, undefined, 'GH_ERR_THROTTLED']);
    expect(await write('other-agent')).toBeUndefined();
    clock.advance(60 * 60_000);
    expect(await write('agent')).toBeUndefined();
  });

  it('holds a github HTTP upstream to apiHosts: api.github.com by default, a GitHub Enterprise host when set', () => {
    const verdict = (apiHosts: string[] | undefined, upstreamUrl: string) => {
      const kernel = new Kernel(load([{ name: 'github', params: apiHosts ? { apiHosts } : {} }]));
      const input = { tenant: 'default', principal: 'p', server: 'github', tool: 'github__get_issue', annotations: undefined, args: { owner: 'o', repo: 'r', issue_number: 1 }, upstreamUrl };
      return verdictOf(input, kernel.decide(input));
    };
    expect(verdict(undefined, 'https://api.github.com/mcp').effect).toBe('allow_with_constraints');
    expect(verdict(undefined, 'https://github.example.com/api/v3').code).toBe('GH_ERR_EGRESS_DENIED');
    expect(verdict(['github.example.com'], 'https://github.example.com/api/v3').effect).toBe('allow_with_constraints');
    expect(verdict(['github.example.com'], 'https://api.github.com/mcp').code).toBe('GH_ERR_EGRESS_DENIED');
  });

  it("keeps the shell pack's file tools anywhere but the protected paths with the default workspace /", () => {
    const kernel = new Kernel(load([{ name: 'shell', params: {} }]));
    const read = (path: string) => {
      const input = { tenant: 'default', principal: 'p', server: 'desktop-commander', tool: 'desktop-commander__read_file', annotations: undefined, args: { path } };
      return verdictOf(input, kernel.decide(input));
    };
    expect(read('/etc/hosts').effect).toBe('allow_with_constraints');
    expect(read('/srv/app/src/main.ts').effect).toBe('allow_with_constraints');
    for (const path of ['/etc/shadow', '/etc/sudoers', '/proc/self/environ', '/root/.ssh/id_rsa', '/srv/app/.env', '/root/.claude-server-commander/config.json', 'relative.txt']) {
      expect(read(path).code, path).toBe('GH_ERR_PATH_DENIED');
    }
  });

  it('holds every shell command for a human with an empty allow list, and runs only what the list names', () => {
    const effect = (allowCommands: string[], command: string) =>
      new Kernel(load([{ name: 'shell', params: { allowCommands } }])).decide({ tenant: 'default', principal: 'p', server: 'desktop-commander', tool: 'desktop-commander__start_process', annotations: undefined, args: { command } }).effect;
    expect(effect([], 'ls')).toBe('require_approval');
    expect(effect(['ls'], 'ls')).toBe('allow_with_constraints');
    expect(effect(['ls'], 'ls -a')).toBe('require_approval');
    expect(effect(['ls'], 'ls; rm -rf /')).toBe('deny');
  });

  describe('bad input: each a GH_ERR_POLICY_INVALID with the file and line', () => {
    it('a syntax error', () => {
      const dir = brokenPack('pack.yaml', (t) => t.replace('version: 1.0.0', 'version: [1.0.0'));
      const [problem] = problemsOf(() => load([{ name: dir, params: WS }]));
      expect(problem).toMatchObject({ file: join(dir, 'pack.yaml'), line: expect.any(Number) });
    });

    it('an unknown key, at its own line', () => {
      const dir = brokenPack('tools.yaml', (t) => t.replace('  read_file:\n    riskTags', '  read_file:\n    riskTag: [x]\n    riskTags'));
      expect(problemsOf(() => load([{ name: dir, params: WS }]))).toEqual([
        expect.objectContaining({ file: join(dir, 'tools.yaml'), line: lineOf(join(dir, 'tools.yaml'), 'riskTag: [x]'), path: ['tools', 'read_file', 'riskTag'] }),
      ]);
    });

    it("a rule id that clashes with the deployment's: both places named", () => {
      const base = join(mkdtempSync(join(tmpdir(), 'gh-base-')), 'base.yaml');
      writeFileSync(base, 'version: 2\nrules:\n  - id: filesystem/read-cap\n    effect: allow\n');
      const problems = problemsOf(() => load([{ name: 'filesystem', params: WS }], [base]));
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ file: base, line: 3, path: ['rules', 0, 'id'] }),
          expect.objectContaining({ file: join(FILESYSTEM, 'policies', 'filesystem.yaml'), line: lineOf(join(FILESYSTEM, 'policies', 'filesystem.yaml'), 'id: filesystem/read-cap') }),
        ]),
      );
    });

    it('a rule id outside the pack\'s namespace', () => {
      const dir = brokenPack('policies/filesystem.yaml', (t) => t.replace('id: filesystem/read-cap', 'id: read-cap'));
      expect(problemsOf(() => load([{ name: dir, params: WS }]))).toEqual([
        expect.objectContaining({ file: join(dir, 'policies', 'filesystem.yaml'), line: lineOf(join(dir, 'policies', 'filesystem.yaml'), 'id: read-cap'), path: ['rules', 1, 'id'] }),
      ]);
    });

    it('a parameter of the wrong type, and a missing required one', () => {
      const manifest = join(FILESYSTEM, 'pack.yaml');
      expect(problemsOf(() => load([{ name: 'filesystem', params: { ...WS, maxReadBytes: 'lots' } }]))).toEqual([
        expect.objectContaining({ file: manifest, line: lineOf(manifest, 'maxReadBytes:'), path: ['params', 'maxReadBytes'] }),
      ]);
      expect(problemsOf(() => load([{ name: 'filesystem', params: { workspace: 'relative/dir' } }]))).toEqual([
        expect.objectContaining({ file: manifest, line: lineOf(manifest, 'workspace:'), path: ['params', 'workspace'] }),
      ]);
      expect(problemsOf(() => load([{ name: 'filesystem', params: {} }]))).toEqual([
        expect.objectContaining({ file: manifest, line: lineOf(manifest, 'workspace:'), path: ['params', 'workspace'] }),
      ]);
      expect(problemsOf(() => load([{ name: 'filesystem', params: { ...WS, workspce: '/x' } }]))).toEqual([
        expect.objectContaining({ file: manifest, path: ['params'], line: lineOf(manifest, 'params:') }),
      ]);
    });

    it('a requires this version does not meet', () => {
      const dir = brokenPack('pack.yaml', (t) => t.replace('requires: ">=0.1.0 <1.0.0"', 'requires: ">=7.0.0"'));
      expect(problemsOf(() => load([{ name: dir, params: WS }]))).toEqual([
        expect.objectContaining({ file: join(dir, 'pack.yaml'), line: lineOf(join(dir, 'pack.yaml'), 'requires:'), path: ['requires'] }),
      ]);
    });

    it('a pack that does not exist', () => {
      expect(problemsOf(() => load([{ name: 'nosuchpack', params: {} }]))).toEqual([expect.objectContaining({ path: ['packs', 0, 'name'] })]);
    });
  });

  it('reads version ranges as npm does for the forms packs use', () => {
    expect(satisfies('0.1.0', '>=0.1.0 <1.0.0')).toBe(true);
    expect(satisfies('1.0.0', '>=0.1.0 <1.0.0')).toBe(false);
    expect(satisfies('0.1.5', '^0.1.0')).toBe(true);
    expect(satisfies('0.2.0', '^0.1.0')).toBe(false);
    expect(satisfies('1.4.0', '^1.2.0')).toBe(true);
    expect(satisfies('1.2.9', '~1.2.0')).toBe(true);
    expect(satisfies('1.3.0', '~1.2.0')).toBe(false);
    expect(satisfies('0.1.7', '0.1.x')).toBe(true);
    expect(satisfies('2.0.0', '^1.0.0 || ^2.0.0')).toBe(true);
    expect(satisfies('1.0.0-rc.1', '>=1.0.0')).toBe(false);
    expect(satisfies('0.1.0', 'not a range')).toBeUndefined();
  });

  it('a bad pack install keeps the running policy on reload; a good one swaps in with the pack in the snapshot', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-packs-data-'));
    const config = defaultConfig({ dataDir });
    const kernel = new Kernel(loadDeploymentPolicy(config));
    const events: AuditEvent[] = [];
    const reloader = new PolicyReloader({ paths: [], alsoWatch: deploymentPolicyFiles(config), load: () => loadDeploymentPolicy(config), kernel, audit: { record: (e) => events.push(e) }, clock: systemClock, log: silentLogger, onSwapped: () => {} });
    const before = kernel.snapshot;
    for (const bad of [{ name: 'filesystem', params: {} }, { name: 'filesystem', params: { workspace: 7 } }, { name: 'nosuchpack', params: {} }]) {
      writeInstalled(dataDir, [bad]);
      expect(reloader.reload('test')).toMatchObject({ kind: 'refused', current: before });
      expect(kernel.snapshot).toBe(before);
    }
    writeInstalled(dataDir, [{ name: 'filesystem', params: WS }]);
    const swapped = reloader.reload('test');
    expect(swapped).toMatchObject({ kind: 'swapped', previous: before });
    expect(kernel.snapshot).not.toBe(before);
    expect(kernel.snapshot).toBe(loadPolicyBundle([], [{ name: 'filesystem', params: WS }], packPlaces(dataDir)).snapshot);
    expect(events.map((e) => e.type)).toEqual(['policy.reload_refused', 'policy.reload_refused', 'policy.reload_refused', 'policy.reloaded']);
    expect((events[3].data as { files: string[] }).files).toContain('filesystem@1.0.0/policies/filesystem.yaml');
  });

  it('loads every example under examples/packs/ with its packs', () => {
    for (const name of readdirSync(join(ROOT, 'examples', 'packs'))) {
      const { config } = loadConfig(join(ROOT, 'examples', 'packs', name, 'gatehouse.yaml'), { GATEHOUSE_WORKSPACE: '/srv/ws', DATABASE_URL: 'postgresql://reader@127.0.0.1/app', GITHUB_PERSONAL_ACCESS_TOKEN: 'x' });
      expect(loadDeploymentPolicy(config).packs?.map((p) => p.name)).toEqual([name]);
    }
  });

  it('in distributed mode takes packs from the config alone, so replicas with different data dirs decide the same', () => {
    const replica = () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'gh-replica-'));
      return defaultConfig({ mode: 'distributed', dataDir, packs: [{ name: 'filesystem', params: WS }] });
    };
    const [a, b] = [replica(), replica()];
    // One machine's data dir installs another pack: in distributed mode it is not read.
    writeInstalled(b.dataDir, [{ name: 'memory', params: {} }]);
    expect(loadDeploymentPolicy(b).snapshot).toBe(loadDeploymentPolicy(a).snapshot);
    expect(loadDeploymentPolicy({ ...b, mode: 'embedded' }).snapshot).not.toBe(loadDeploymentPolicy(a).snapshot);
  });

  it('recognises the server a command runs, and reads the parameters its command line states', () => {
    const fs = loadPack(FILESYSTEM);
    const server = (command: string, args: string[]) => ({ command, args, package: launchedPackage(command, args) });
    const npx = server('npx', ['-y', '@modelcontextprotocol/server-filesystem@2026.8.31', 'work']);
    expect(npx.package).toEqual({ name: '@modelcontextprotocol/server-filesystem', index: 1 });
    expect(packFits(fs, npx)).toBe(true);
    expect(paramsFromCommand(fs, npx, '/home/me')).toEqual({ workspace: '/home/me/work' });
    const script = server('node', ['node_modules/@modelcontextprotocol/server-filesystem/dist/index.js', '/srv/ws']);
    expect(packFits(fs, script)).toBe(true);
    expect(paramsFromCommand(fs, script, '/')).toEqual({ workspace: '/srv/ws' });
    expect(packFits(fs, server('npx', ['-y', '@modelcontextprotocol/server-memory']))).toBe(false);
    expect(packFits(fs, server('uvx', ['mcp-server-fetch']))).toBe(false);
  });

  it('recognises a running server by its serverInfo name, or by its listing every tool of match.tools', () => {
    const browser = loadPack(join(BUNDLED_PACKS, 'browser'));
    const signature = ['browser_navigate', 'browser_snapshot', 'browser_click', 'browser_run_code_unsafe'];
    expect(initialisedFit(browser, { serverName: 'Playwright', tools: [] })).toBe('serverName');
    expect(initialisedFit(browser, { serverName: 'my-browser', tools: [...signature, 'browser_pdf_save'] })).toBe('tools');
    expect(initialisedFit(browser, { tools: signature.slice(1) })).toBeUndefined();
    expect(initialisedFit(browser, { serverName: 'playwright', tools: ['browser_navigate'] })).toBeUndefined();
    // A pack without match.tools is never matched by tools, however many of its tools a server lists.
    const memory = loadPack(join(BUNDLED_PACKS, 'memory'));
    expect(initialisedFit(memory, { serverName: 'memory-server', tools: [] })).toBe('serverName');
    expect(initialisedFit(memory, { tools: Object.keys(memory.tools.tools) })).toBeUndefined();
  });
});

describe("the pins a pack's tools.yaml gives", () => {
  it("names each governed tool's digest and the pack, except those the server writes the machine into", () => {
    const bundle = loadPolicyBundle([], [{ name: 'shell', params: {} }, { name: 'memory', upstream: 'notes', params: {} }], packPlaces(mkdtempSync(join(tmpdir(), 'gh-pins-'))));
    const shell = loadPack(join(BUNDLED_PACKS, 'shell'));
    const pins = bundle.toolPins!['desktop-commander'];
    expect(pins.get_config).toEqual({ digest: shell.tools.tools.get_config.digest, by: `pack:shell@${shell.manifest.version}` });
    expect(pins.start_process).toBeUndefined();
    expect(Object.keys(pins).length + Object.values(shell.tools.tools).filter((t) => t.machineDependent).length).toBe(Object.keys(shell.tools.tools).length);
    expect(Object.keys(bundle.toolPins!.notes)).toContain('read_graph');
  });
});
