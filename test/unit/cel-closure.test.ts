// Conditions run as closures (src/kernel/cel-closure.ts) where they can, and the library's evaluator otherwise: the
// two must give every condition the same value and the same error text, on well-formed arguments and on arguments
// of the wrong type, missing, or hostile. Each condition is evaluated on each input both ways and compared.
import { describe, expect, it } from 'vitest';
import { checkedCondition, compileCondition, firstLine, Thrown, type ConditionScope } from '../../src/kernel/cel.ts';
import { CallFacts } from '../../src/kernel/evaluation.ts';
import type { DecisionInput, SessionView } from '../../src/kernel/decision.ts';

/** Conditions whose every node has a closure. */
const CLOSED = [
  'has(args.recursive) && args.recursive == true',
  '!(args.cmd in ["ls", "cat", "echo"])',
  'size(args.q) < 5',
  'size(args.list) == 2 || size(args.nested) == 1',
  'inZone(now, "Europe/Paris").getHours() < 8',
  'now.getDayOfWeek() == 1 && now.getMinutes() >= 30',
  'now.getFullYear() == 2025 && now.getMonth() == 0 && now.getDate() == 6 && now.getSeconds() == 0',
  'args.limit > 500 || args.query.contains("DROP")',
  'args.ratio < 0.5',
  'args.limit == 600 && args.limit >= args.size',
  'args.name < "m" && args.name != "bob"',
  '!pathUnder(args.path, "/srv/ws")',
  'has(args.path) && glob(args.path, "**/.ssh/**")',
  'args.path.endsWith(".key") || args.path.startsWith("/etc")',
  'hostOf(args.url).endsWith(".example.com")',
  '!hostMatches(hostOf(args.url), "*.example.com")',
  'principal != "admin" && tenant == "t1" && tool.startsWith("s__") && server == "s"',
  'kind == "tool" && method == "tools/call" && uri == "" && prompt == ""',
  'labels.env == "prod"',
  'annotations.readOnlyHint || !annotations.destructiveHint',
  '"write" in riskTags',
  '"rm" in shellCommands(args.cmd)',
  '"drop table x" in sqlStatements(args.query)',
  'session.calls > 3 || session.approvals == 0',
  'has(session.id) && session.client.name == "claude"',
  'args.nested.key == "v"',
  'args.flag == true || args.missing == 1',
  'args.missing == 1 || true',
  'args.missing == 1 && false',
  'args.count > 1.5',
  'args.limit > 500',
  // A literal and `args.key` read inside the closure that uses them, not by closures of their own.
  'args.name.contains("o") && args.count >= 2 && args.limit < 1.5',
  'args.flag != false && labels.env != "dev" && args.missing.startsWith("x")',
  // A helper's literal directory or pattern read once at load (pathUnderDir, pathGlobOf, hostMatcherOf).
  'pathUnder(args.path, "relative") || hostMatches(hostOf(args.url), "https://not-a-pattern/")',
  'glob(args.path, "/srv/**/*.key") || pathUnder(args.path, "/") || hostMatches(args.name, "10.0.0.0/8")',
  // Errors from more than one place: the first the library meets is the one it reports.
  'pathUnder(args.path, "/srv") && pathUnder(args.url, "/srv")',
  'pathUnder(args.path, "/srv") || hostMatches(hostOf(args.url), "*.example.com")',
  '!pathUnder(args.path, "/srv") || !pathUnder(args.other, "/srv")',
  'glob(args.path, args.name) && glob(args.url, args.query)',
  'pathUnder(args.url, args.path)',
  'pathUnder(args.path, "/srv") || true',
  'pathUnder(args.path, "/srv") && false',
  'hostOf(args.url).endsWith(args.path)',
  'hostOf(args.path) in [hostOf(args.url), hostOf(args.query)]',
  '"x" in [hostOf(args.url), hostOf(args.query)]',
  'hostMatches(hostOf(args.url), hostOf(args.query))',
  'hostOf(args.url).endsWith(hostOf(args.query))',
  'pathUnder(args.path, "/srv") == pathUnder(args.url, "/srv")',
  'inZone(now, args.name).getHours() > 3',
  // Variables read whole: a value of another type than declared is the library's error, not a value.
  'size(args) == 2',
  '"a" in args',
  'principal == tenant',
];

/** Conditions the library alone evaluates (a node without a closure): they must keep working. */
const OPEN = ['args.?missing.orValue(3) == 3', 'args.list.exists(x, x > 1)', '-5 < args.limit', 'now < timestamp("2030-01-01T00:00:00Z")', 'args.limit + 1 > 600', 'session.labels.size() > 0'];

const SESSION: SessionView = { id: 'sess', calls: 4, tools: ['s__t'], riskTags: ['write'], labels: ['tainted'], startedAt: 1_000, approvals: 0, client: { name: 'claude', version: '1' } };

const ARGS: (Record<string, unknown> | undefined)[] = [
  { path: '/srv/ws/a.txt', url: 'https://api.example.com/v1', limit: 600, query: 'SELECT 1', cmd: 'ls', q: 'need', recursive: true, ratio: 0.25, size: 10, name: 'alice', nested: { key: 'v' }, list: [1, 2], flag: false, count: 3 },
  { path: 5, url: null, limit: '600', query: 7, cmd: ['ls'], q: '😀😀😀😀', recursive: 'yes', ratio: 1, size: 1.5, name: 3, nested: 'x', list: 'ab', flag: null, count: 2.5 },
  { path: 'relative/x', url: 'http://2130706433/', cmd: 'ls; rm -rf /', query: 'DROP TABLE x; SELECT 1', q: '\ud800abcd', recursive: false, limit: 2 ** 60, ratio: Number.NaN, name: 'zed', nested: { key: 1 }, list: [], flag: true, count: 1 },
  { path: '/home/u/.ssh/id.key', url: 'https://api.example.com@evil.com/', cmd: 'echo', query: 'drop table x', q: 'x', limit: 600, size: 600, name: 'bob' },
  { path: 'x/../y', url: 'http://a@b@c/', query: 'not a url', name: 'Nowhere/Zone', other: '/srv/a' },
  {},
  undefined,
  // Not objects: the kernel's input type forbids them, a recorded input might still hold one.
  ['a', 'b'] as unknown as Record<string, unknown>,
  'text' as unknown as Record<string, unknown>,
];

function inputs(): DecisionInput[] {
  const out: DecisionInput[] = [];
  for (const args of ARGS) {
    out.push({ tenant: 't1', principal: 'alice', server: 's', tool: 's__t', annotations: { readOnlyHint: true }, labels: { env: 'prod' }, args, now: Date.UTC(2025, 0, 6, 7, 45), session: SESSION });
    out.push({ tenant: 't2', principal: 'admin', server: 's', tool: 'x__t', annotations: undefined, args });
    out.push({ tenant: 't1', principal: 'bob', server: 's', tool: 's__t', kind: 'resource', method: 'resources/read', uri: 'file:///a', annotations: { destructiveHint: true }, labels: { env: 'dev' }, args, now: Date.UTC(2025, 0, 6, 23, 30) });
    // Names of another type, as a hand-written `policy test` case might hold.
    out.push({ tenant: 5, principal: 5, server: 's', tool: 's__t', annotations: undefined, args } as unknown as DecisionInput);
    // A map with its own `constructor` key: the library tells a map by its constructor, and refuses this one.
    out.push({ tenant: 't1', principal: 'alice', server: 's', tool: 's__t', annotations: undefined, labels: { constructor: 'x', env: 'prod' }, args });
  }
  return out;
}

type Answer = { value: unknown } | { error: string };
function answer(evaluate: () => unknown): Answer {
  try {
    return { value: evaluate() };
  } catch (err) {
    return { error: firstLine(err) };
  }
}

/** `Condition.outcome`'s answer, which gives what was thrown rather than throwing it. */
function outcomeAnswer(outcome: unknown): Answer {
  return outcome instanceof Thrown ? { error: firstLine(outcome.error) } : { value: outcome };
}

const facts = (input: DecisionInput) => new CallFacts(input, { server: input.server, rules: [], override: undefined, readsSession: true, decisions: undefined });

/** A scope without `arg`, as a grant's (approvals/grant.ts): closures read `args` whole. */
function plain(input: DecisionInput): ConditionScope {
  const f = facts(input);
  const { tool, server, principal, tenant, args, labels, annotations, riskTags, now, kind, method, uri, prompt, session } = f;
  return { tool, server, principal, tenant, args, labels, annotations, riskTags, now, kind, method, uri, prompt, session };
}

describe('CEL conditions as closures', () => {
  it('give the value and the error text the library gives, on every input', () => {
    let decidedByClosure = 0;
    for (const source of [...CLOSED, ...OPEN]) {
      const { library, closure } = checkedCondition(source);
      const condition = compileCondition(source);
      for (const input of inputs()) {
        const expected = answer(() => library(facts(input)));
        expect(answer(() => condition.evaluate(facts(input))), `${source} on ${JSON.stringify(input.args)}`).toEqual(expected);
        expect(answer(() => condition.evaluate(plain(input))), `${source} on ${JSON.stringify(input.args)}, a scope without arg()`).toEqual(expected);
        expect(outcomeAnswer(condition.outcome(facts(input))), `${source} on ${JSON.stringify(input.args)}, as an outcome`).toEqual(expected);
        const own = closure && answer(() => closure(facts(input)));
        if (own && 'value' in own && typeof own.value === 'boolean') {
          decidedByClosure++;
          expect(own, `${source}: the closure's own answer`).toEqual(expected);
        }
      }
    }
    expect(decidedByClosure).toBeGreaterThan(300);
  });

  it('cover the common shapes, and leave the rest to the library', () => {
    for (const source of CLOSED) expect(checkedCondition(source).closure, source).toBeDefined();
    for (const source of OPEN) expect(checkedCondition(source).closure, source).toBeUndefined();
  });
});
