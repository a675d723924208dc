/**
 * The safety kernel alone, in process: generated bundles of 1,000 rules over 50 servers and of 10,000 rules over 500
 * servers (CEL conditions on paths, hosts, argument values, principals and time; every effect; exact names and
 * globs), then:
 *   parse    YAML text → document (the yaml library)
 *   validate document → bundle (schema checks, CEL parsed and type-checked, the snapshot hash)
 *   compile  bundle → kernel (conditions, matchers, the server and tool index)
 *   decide   p50 / p99 of single decisions over varied inputs, and decisions per second
 * Each figure is the median over rounds; each round uses fresh condition texts, so no memo from an earlier
 * round helps its load. Env: BENCH_KERNEL_ROUNDS (5), BENCH_KERNEL_DECISIONS (50000 per round).
 */
import { parseYamlText } from '../src/config/yaml-file.ts';
import { mergePolicySources, parsePolicy, type PolicyBundle } from '../src/kernel/bundle.ts';
import { Kernel } from '../src/kernel/kernel.ts';
import type { DecisionInput } from '../src/kernel/decision.ts';
import { median, percentile } from './stats.ts';

const RULES_PER_SERVER = 20;
const TOOLS = ['read_file', 'write_file', 'list', 'delete', 'fetch', 'query', 'exec', 'search', 'read_meta', 'move_file'];

/** A bundle size and its targets: validate + compile (cold), decide p99. */
interface Size {
  servers: number;
  compileMs: number;
  p99Us: number;
}
const SIZES: readonly Size[] = [
  { servers: 50, compileMs: 200, p99Us: 20 },
  { servers: 500, compileMs: 500, p99Us: 10 },
];

const envInt = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
};

/** Twenty rules for one server; `salt` changes every condition's text from one round to the next. */
function serverRules(s: number, salt: number): string[] {
  const srv = `srv${s}`;
  const ws = `/srv/${srv}/ws${salt}`;
  return [
    `{ id: ${srv}-ro, match: { servers: [${srv}], annotations: { readOnlyHint: true } }, effect: allow, reason: read-only }`,
    `{ id: ${srv}-bounded, match: { servers: [${srv}] }, effect: allow_with_constraints, constraints: { timeoutMs: 30s, maxOutputBytes: 1048576 } }`,
    `{ id: ${srv}-ws-only, match: { tools: [${srv}__write_file] }, effect: deny, when: '!pathUnder(args.path, "${ws}")', remediation: "write under ${ws}" }`,
    `{ id: ${srv}-rm-r, match: { tools: ["${srv}__delete*"] }, effect: require_approval, when: 'has(args.recursive) && args.recursive == true', approval: { ttl: 15m, approvers: [ops] } }`,
    `{ id: ${srv}-fetch-rate, match: { tools: [${srv}__fetch] }, effect: throttle, throttle: { limit: ${10 + salt}, window: 1m, per: principal } }`,
    `{ id: ${srv}-egress, match: { tools: [${srv}__fetch] }, effect: deny, when: '!hostMatches(hostOf(args.url), "*.example${s}-${salt}.com")' }`,
    `{ id: ${srv}-svc, match: { servers: [${srv}], principals: ["svc-*"] }, effect: allow }`,
    `{ id: ${srv}-big, match: { servers: [${srv}], tenants: [t1, t2] }, effect: deny, when: 'has(args.size) && args.size > ${1000 + s + salt}' }`,
    `{ id: ${srv}-prod, match: { servers: [${srv}], labels: { env: prod } }, effect: require_approval, when: 'principal != "admin${salt}"' }`,
    `{ id: ${srv}-ssh, match: { tools: ["${srv}__read_*"] }, effect: deny, when: 'has(args.path) && glob(args.path, "**/.ssh${salt}/**")' }`,
    `{ id: ${srv}-destroy, match: { servers: [${srv}], riskTags: [destructive] }, effect: require_approval }`,
    `{ id: ${srv}-sql, match: { tools: [${srv}__query] }, effect: deny, when: 'args.limit > ${500 + salt} || args.query.contains("DROP")' }`,
    `{ id: ${srv}-exec, match: { tools: [${srv}__exec] }, effect: deny, when: '!(args.cmd in ["ls", "cat", "echo${salt}"])' }`,
    `{ id: ${srv}-search, match: { tools: [${srv}__search] }, effect: allow_with_constraints, when: 'size(args.q) < ${200 + salt}', constraints: { maxArgBytes: 4096 } }`,
    `{ id: ${srv}-night, match: { servers: [${srv}] }, effect: deny, when: 'inZone(now, "Europe/Paris").getHours() < ${salt % 3}' }`,
    `{ id: ${srv}-list, match: { tools: [${srv}__list] }, effect: allow, when: 'pathUnder(args.path, "/srv/${srv}/${salt}")' }`,
    `{ id: ${srv}-paths, match: { tools: [${srv}__write_file, ${srv}__move_file] }, effect: allow_with_constraints, constraints: { paths: { args: [path], allow: ["${ws}/**"], deny: ["**/.ssh/**"] } } }`,
    `{ id: ${srv}-team, match: { servers: [${srv}], principals: [bob, "team-${s}-*"] }, effect: require_approval, when: 'has(args.size) && args.size > ${10 + salt}' }`,
    `{ id: ${srv}-keys, match: { tools: ["${srv}__*_file"] }, effect: deny, when: 'has(args.path) && args.path.endsWith(".key${salt}")' }`,
    `{ id: ${srv}-api, match: { tools: [${srv}__fetch] }, effect: allow, when: 'hostOf(args.url).endsWith(".example${s}-${salt}.com")' }`,
  ];
}

export function bundleText(servers: number, salt: number): string {
  const rules: string[] = [];
  for (let s = 0; s < servers; s++) rules.push(...serverRules(s, salt).slice(0, RULES_PER_SERVER));
  return `version: 2\ndefault: deny\nrules:\n${rules.map((r) => `  - ${r}`).join('\n')}\n`;
}

/** A deterministic pseudo-random stream, so every run decides on the same inputs. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
}

export function inputs(servers: number, count: number, salt: number): DecisionInput[] {
  const next = random(42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
  const out: DecisionInput[] = [];
  for (let i = 0; i < count; i++) {
    const s = Math.floor(next() * servers);
    const tool = pick(TOOLS);
    const base = `/srv/srv${s}/ws${salt}`;
    out.push({
      tenant: pick(['t1', 't2', 't3']),
      principal: pick(['alice', 'bob', 'svc-ci', `admin${salt}`, `team-${s}-x`]),
      server: `srv${s}`,
      tool: `srv${s}__${tool}`,
      annotations: pick([undefined, { readOnlyHint: true }, { destructiveHint: true }, { readOnlyHint: false, openWorldHint: false }]),
      labels: { env: pick(['prod', 'dev']) },
      args: {
        path: pick([`${base}/a.txt`, `${base}/../../etc/passwd`, `/home/u/.ssh${salt}/id`, `${base}/k.key${salt}`, 'relative/x']),
        url: pick([`https://api.example${s}-${salt}.com/v1`, 'http://2130706433/', `https://api.example${s}-${salt}.com@evil.com/`]),
        size: Math.floor(next() * 3000),
        recursive: next() < 0.5,
        limit: Math.floor(next() * 1000),
        query: pick(['SELECT 1', 'DROP TABLE x']),
        cmd: pick(['ls', 'rm']),
        q: 'needle',
      },
      now: Date.UTC(2025, 0, 6, Math.floor(next() * 24)),
    });
  }
  return out;
}

interface Round {
  parseMs: number;
  validateMs: number;
  compileMs: number;
  p50Us: number;
  p99Us: number;
  perSecond: number;
}

function round(servers: number, salt: number, decisions: number): Round {
  const text = bundleText(servers, salt);
  const t0 = process.hrtime.bigint();
  const document = parseYamlText('bench.yaml', text, 'GH_ERR_POLICY_INVALID');
  const tParsed = process.hrtime.bigint();
  const bundle: PolicyBundle = mergePolicySources([parsePolicy(document)]);
  const t1 = process.hrtime.bigint();
  const kernel = new Kernel(bundle);
  const t2 = process.hrtime.bigint();
  if (bundle.rules.length !== servers * RULES_PER_SERVER) throw new Error(`expected ${servers * RULES_PER_SERVER} rules, got ${bundle.rules.length}`);

  const sample = inputs(servers, 4096, salt);
  for (let i = 0; i < 20_000; i++) kernel.decide(sample[i & 4095]); // warm: JIT, and the per-tool plans
  const times = new Float64Array(decisions);
  for (let i = 0; i < decisions; i++) {
    const input = sample[i & 4095];
    const start = process.hrtime.bigint();
    kernel.decide(input);
    times[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  times.sort();
  const batchStart = process.hrtime.bigint();
  for (let i = 0; i < decisions; i++) kernel.decide(sample[i & 4095]);
  const batchNs = Number(process.hrtime.bigint() - batchStart);
  return {
    parseMs: Number(tParsed - t0) / 1e6,
    validateMs: Number(t1 - tParsed) / 1e6,
    compileMs: Number(t2 - t1) / 1e6,
    p50Us: percentile(times, 50),
    p99Us: percentile(times, 99),
    perSecond: decisions / (batchNs / 1e9),
  };
}

/** Runs the kernel rounds for each bundle size and prints the figures, each against its target. */
export function printKernelBench(): void {
  for (const size of SIZES) printSize(size);
}

function printSize({ servers, compileMs, p99Us }: Size): void {
  const rounds = envInt('BENCH_KERNEL_ROUNDS', 5);
  const decisions = envInt('BENCH_KERNEL_DECISIONS', 50_000);
  const results: Round[] = [];
  for (let r = 0; r < rounds; r++) results.push(round(servers, r + 1, decisions));
  const [cold] = results;
  const warm = results.length > 1 ? results.slice(1) : results;
  const m = (key: keyof Round) => median(warm.map((x) => x[key]));
  const verdict = (value: number, target: number) => (value <= target ? 'ok' : 'MISSED');
  const ms = (value: number) => `${value.toFixed(1).padStart(7)} ms`;
  const kernelMs = (x: Round) => x.validateMs + x.compileMs;
  console.log(`\nSafety kernel: ${(servers * RULES_PER_SERVER).toLocaleString('en-US')} rules over ${servers} servers; warm = median of rounds 2-${rounds}, ${decisions} decisions each`);
  console.log('                                  cold       warm');
  console.log(`  parse (YAML -> document)    ${ms(cold.parseMs)} ${ms(m('parseMs'))}`);
  console.log(`  validate (-> bundle, CEL)   ${ms(cold.validateMs)} ${ms(m('validateMs'))}`);
  console.log(`  compile (bundle -> kernel)  ${ms(cold.compileMs)} ${ms(m('compileMs'))}`);
  console.log(`  validate + compile          ${ms(kernelMs(cold))} ${ms(median(warm.map(kernelMs)))}   target <= ${compileMs} ms: ${verdict(kernelMs(cold), compileMs)}`);
  console.log(`  decide p50                                ${m('p50Us').toFixed(2).padStart(7)} µs`);
  console.log(`  decide p99                                ${m('p99Us').toFixed(2).padStart(7)} µs   target <= ${p99Us} µs: ${verdict(m('p99Us'), p99Us)}`);
  console.log(`  decisions/s                               ${Math.round(m('perSecond')).toLocaleString('en-US').padStart(7)}`);
}
