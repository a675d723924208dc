import { Environment, type ASTNode } from '@marcbachmann/cel-js';
import { hostMatcherOf, hostMatches, hostOf } from './hosts.ts';
import { pathGlob, pathGlobOf, pathUnder, pathUnderDir } from './paths.ts';
import { shellCommands } from './shell.ts';
import { sqlStatements } from './sql.ts';
import type { SessionView } from './decision.ts';
import { closureOf, UNSURE, type ClosureFunction } from './cel-closure.ts';
import { CEL_VARIABLES, isVariable } from './cel-variables.ts';

/**
 * `when:` conditions, in CEL. Parsed and type-checked once, at load; a request only evaluates them.
 *
 * Variables: `tool` (the namespaced name), `server`, `principal`, `tenant` (strings); `args` (map; JSON integers
 * arrive as CEL ints, other numbers as doubles, so `args.count > 10` and `args.ratio < 0.5` both work; a missing
 * key throws, test with `has(args.x)` or `args.?x.orValue(…)`); `labels` (map<string, string>); `annotations`
 * (map<string, bool>: the four hints after the bundle's overrides, undeclared ones at their MCP defaults and
 * destructiveHint false); `riskTags` (list<string>); `now` (a timestamp: compare with `timestamp("…")`, read
 * `inZone(now, "Europe/Paris").getHours()`; the decision input's time, the epoch when the input has none); `kind`
 * (`tool`, `resource` or `prompt`), `method` (`tools/call`, `resources/read` …), `uri` (a resource request's, else
 * empty) and `prompt` (a prompt request's namespaced name, else empty); `session` (map: `id`, `calls` and
 * `approvals` (ints), `tools`, `riskTags` and `labels` (lists of strings), `startedAt` (a timestamp), `client`
 * (`name`, `version`): the facts of the calls of the session before this one, see src/session/).
 * Functions: `pathUnder(path, dir)`, `glob(path, pattern)` (see paths.ts), `hostOf(url)`, `hostMatches(host,
 * pattern)` (see hosts.ts), `inZone(timestamp, zone)` (the same instant shifted so that the UTC getters
 * (`getHours()` …) read the wall clock of that IANA zone), `shellCommands(line)` (every command a shell line runs,
 * normalised: see shell.ts), `sqlStatements(sql)` (the statements of a SQL text, normalised: see sql.ts).
 *
 * Refused at load: `matches()` (its regex engine backtracks without bound), the getters that take a zone
 * (`now.getHours("UTC")`: an Intl formatter per call; use `inZone`), a comprehension inside another
 * (`all`/`exists`/`map`/`filter` nested: quadratic in the size of the arguments), more than 4 KiB of source,
 * and trees beyond the limits below. Policy text is trusted (operators and packs write it); these limits keep a
 * careless condition from looping inside loops over arguments an attacker sizes.
 */

export const MAX_CONDITION_LENGTH = 4096;
const LIMITS = { maxAstNodes: 512, maxDepth: 24, maxListElements: 256, maxMapEntries: 64, maxCallArguments: 8 };
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
/** The library's time-zone getters build an Intl formatter per call (~40 µs): `inZone()` replaces them. */
const ZONED_GETTERS = new Set(['getDate', 'getDayOfMonth', 'getDayOfWeek', 'getDayOfYear', 'getFullYear', 'getHours', 'getMinutes', 'getMonth', 'getSeconds', 'getMilliseconds']);

/** What a condition reads its variables from. Getters may compute lazily: only the variables used are read. */
export interface ConditionScope {
  readonly tool: string;
  readonly server: string;
  readonly principal: string;
  readonly tenant: string;
  readonly args: ReadonlyMap<string, unknown>;
  /**
   * One argument as `args` holds it, converted alone (undefined when absent), or NOT_A_MAP (cel-closure.ts) when
   * the arguments are not an object: a closure need not convert them all.
   */
  arg?(key: string): unknown;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, boolean>>;
  readonly riskTags: readonly string[];
  readonly now: Date;
  readonly kind: string;
  readonly method: string;
  readonly uri: string;
  readonly prompt: string;
  readonly session: ReadonlyMap<string, unknown>;
}

export interface Condition {
  readonly source: string;
  /** True when it reads `args`, `now` or `session`: it cannot be decided for a listing, which has none of them. */
  readonly readsCall: boolean;
  /** True when it reads `session`: a call's session facts are loaded before it is decided only for such conditions. */
  readonly readsSession: boolean;
  /** The value; throws on an evaluation error (a missing key, a failed helper). */
  evaluate(scope: ConditionScope): unknown;
  /**
   * The value, or what the evaluation threw as a `Thrown`: for the kernel, which would catch it at once. A throw costs
   * about a microsecond, and `evaluate` would throw a closure's error a second time.
   */
  outcome(scope: ConditionScope): unknown;
}

/** What a condition's evaluation threw, as `Condition.outcome` gives it. */
export class Thrown {
  constructor(readonly error: unknown) {}
}

/** The kernel's own CEL functions: their signatures for the library, their argument kinds for the closures. */
const FUNCTIONS: Readonly<Record<string, ClosureFunction & { signature: string }>> = {
  pathUnder: { signature: '(string, string): bool', args: ['string', 'string'], fn: pathUnder, bind: pathUnderDir },
  glob: { signature: '(string, string): bool', args: ['string', 'string'], fn: pathGlob, bind: pathGlobOf },
  hostOf: { signature: '(string): string', args: ['string'], fn: hostOf },
  hostMatches: { signature: '(string, string): bool', args: ['string', 'string'], fn: hostMatches, bind: hostMatcherOf },
  inZone: { signature: '(google.protobuf.Timestamp, string): google.protobuf.Timestamp', args: ['timestamp', 'string'], fn: inZone },
  shellCommands: { signature: '(string): list<string>', args: ['string'], fn: shellCommands },
  sqlStatements: { signature: '(string): list<string>', args: ['string'], fn: sqlStatements },
};


let environment: Environment | undefined;

function celEnvironment(): Environment {
  if (environment) return environment;
  environment = new Environment({ enableOptionalTypes: true, limits: LIMITS });
  for (const [name, { type }] of Object.entries(CEL_VARIABLES)) environment.registerVariable(name, type);
  for (const [name, { signature, fn }] of Object.entries(FUNCTIONS)) environment.registerFunction(`${name}${signature}`, fn);
  return environment;
}

const compiled = new Map<string, Condition>();

/** Parses and type-checks a condition (memoised by source). Throws an Error whose message says what is wrong. */
export function compileCondition(source: string): Condition {
  const known = compiled.get(source);
  if (known) return known;
  const { readsCall, readsSession, library, closure } = checkedCondition(source);
  const condition: Condition = closure ? new ClosureCondition(source, readsCall, readsSession, closure, library) : new LibraryCondition(source, readsCall, readsSession, library);
  if (compiled.size > 20_000) compiled.clear();
  compiled.set(source, condition);
  return condition;
}

type Evaluation = (scope: ConditionScope) => unknown;

/**
 * A condition parsed, refused or checked: what it reads, the library's evaluation, and its closure when every node
 * has one (cel-closure.ts). Exported for the test that holds the two to the same answers.
 */
export function checkedCondition(source: string): { readsCall: boolean; readsSession: boolean; library: Evaluation; closure: Evaluation | undefined } {
  if (source.length > MAX_CONDITION_LENGTH) throw new Error(`a condition may be at most ${MAX_CONDITION_LENGTH} characters`);
  let parsed;
  try {
    parsed = celEnvironment().parse(source);
  } catch (err) {
    throw new Error(`invalid CEL: ${firstLine(err)}`);
  }
  const facts = inspect(parsed.ast);
  const checked = parsed.check();
  if (!checked.valid) throw new Error(`invalid CEL: ${firstLine(checked.error)}`);
  if (checked.type !== 'bool' && checked.type !== 'dyn') throw new Error(`a condition must be a bool, this one is ${checked.type}`);
  return { ...facts, library: parsed as Evaluation, closure: closureOf(parsed.ast, FUNCTIONS) };
}

/** A condition the library alone evaluates. */
class LibraryCondition implements Condition {
  constructor(
    readonly source: string,
    readonly readsCall: boolean,
    readonly readsSession: boolean,
    readonly evaluate: Evaluation,
  ) {}

  outcome(scope: ConditionScope): unknown {
    return outcomeOf(this.evaluate, scope);
  }
}

function outcomeOf(evaluate: Evaluation, scope: ConditionScope): unknown {
  try {
    return evaluate(scope);
  } catch (err) {
    return new Thrown(err);
  }
}

/**
 * A condition with a closure: its boolean or error, or the library's answer when the closure is unsure
 * (cel-closure.ts), so a condition's value and its error text are always what the library would say. A class, so
 * that a decision reads the condition and its closure, not a wrapper closure and its context as well.
 */
class ClosureCondition implements Condition {
  constructor(
    readonly source: string,
    readonly readsCall: boolean,
    readonly readsSession: boolean,
    private readonly closure: Evaluation,
    private readonly library: Evaluation,
  ) {}

  evaluate(scope: ConditionScope): unknown {
    let value: unknown;
    try {
      value = this.closure(scope);
    } catch (err) {
      if (err === UNSURE) return this.library(scope);
      throw err;
    }
    return typeof value === 'boolean' ? value : this.library(scope);
  }

  outcome(scope: ConditionScope): unknown {
    let value: unknown;
    try {
      value = this.closure(scope);
    } catch (err) {
      return err === UNSURE ? outcomeOf(this.library, scope) : new Thrown(err);
    }
    return typeof value === 'boolean' ? value : outcomeOf(this.library, scope);
  }
}

/** Why a condition would be refused at load, or undefined when it compiles. */
export function conditionProblem(source: string): string | undefined {
  try {
    compileCondition(source);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Walks the tree once: refuses `matches()` and nested comprehensions, and notes whether call variables are read. */
function inspect(root: ASTNode): { readsCall: boolean; readsSession: boolean } {
  let readsCall = false;
  let readsSession = false;
  const visit = (node: ASTNode, comprehensions: number): void => {
    if (node.op === 'id' && isVariable(node.args) && CEL_VARIABLES[node.args].readsCall) {
      readsCall = true;
      if (node.args === 'session') readsSession = true;
    }
    if (node.op === 'call' || node.op === 'rcall') {
      const name = node.args[0];
      if (name === 'matches') throw new Error('matches() is not allowed: its regex engine can backtrack without bound; use glob(), hostMatches(), startsWith(), endsWith() or contains()');
      if (node.op === 'rcall' && ZONED_GETTERS.has(name) && node.args[2].length > 0) {
        throw new Error(`${name}(zone) is not allowed: it is slow; write inZone(now, "Europe/Paris").${name}() instead`);
      }
    }
    if (node.op === 'rcall' && COMPREHENSIONS.has(node.args[0])) {
      // The receiver is evaluated once; the body once per element, so only the body counts as nested.
      if (comprehensions > 0) throw new Error(`${node.args[0]}() inside another comprehension is not allowed: its cost would grow with the square of the arguments`);
      visit(node.args[1], comprehensions);
      visitChildren(node.args[2], (child) => visit(child, comprehensions + 1));
      return;
    }
    visitChildren(node.args, (child) => visit(child, comprehensions));
  };
  visit(root, 0);
  return { readsCall, readsSession };
}

function visitChildren(value: unknown, visit: (node: ASTNode) => void): void {
  if (Array.isArray(value)) for (const item of value) visitChildren(item, visit);
  else if (value !== null && typeof value === 'object' && 'op' in value) visit(value as ASTNode);
}

/** What a CEL error (or any thrown value) says, on one line. */
export function firstLine(err: unknown): string {
  const error = err as { summary?: string; message?: string } | undefined;
  return (error?.summary ?? error?.message ?? String(err)).split('\n')[0];
}

/**
 * A session's facts as CEL sees them: counts as ints, `startedAt` as a timestamp, `client` as a map. Without facts,
 * a session whose first call this is: it starts `now`.
 */
export function sessionValue(session: SessionView | undefined, now: Date): ReadonlyMap<string, unknown> {
  return new Map<string, unknown>([
    ['id', session?.id ?? ''],
    ['calls', BigInt(session?.calls ?? 0)],
    ['tools', session?.tools ?? []],
    ['riskTags', session?.riskTags ?? []],
    ['labels', session?.labels ?? []],
    ['startedAt', session ? new Date(session.startedAt) : now],
    ['approvals', BigInt(session?.approvals ?? 0)],
    ['client', new Map([['name', session?.client.name ?? ''], ['version', session?.client.version ?? '']])],
  ]);
}

/** JSON arguments as CEL sees them: objects as maps, safe integers as ints (bigint), other numbers as doubles. */
export function celValue(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(celValue);
  const map = new Map<string, unknown>();
  for (const key of Object.keys(value)) map.set(key, celValue((value as Record<string, unknown>)[key]));
  return map;
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();
/** Offsets by zone, then by quarter hour: number keys, so a decision builds no string to look one up. */
const zoneOffsets = new Map<string, Map<number, number>>();
let offsetsKept = 0;
const QUARTER_HOUR = 900_000;

/**
 * The instant shifted by the zone's UTC offset at that instant. Offsets are memoised per zone and quarter hour,
 * the granularity at which zone offsets (and so their changes) fall. An unknown zone throws.
 */
export function inZone(date: Date, zone: string): Date {
  const time = date.getTime();
  const quarter = Math.floor(time / QUARTER_HOUR);
  let offsets = zoneOffsets.get(zone);
  let offset = offsets?.get(quarter);
  if (offset === undefined) {
    let format = zoneFormats.get(zone);
    if (!format) {
      format = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
      if (zoneFormats.size > 1000) zoneFormats.clear();
      zoneFormats.set(zone, format);
    }
    const part: Record<string, number> = {};
    for (const { type, value } of format.formatToParts(date)) part[type] = Number(value);
    const wall = Date.UTC(part.year, part.month - 1, part.day, part.hour, part.minute, part.second);
    offset = wall - (time - (((time % 1000) + 1000) % 1000));
    if (offsetsKept >= 10_000) {
      zoneOffsets.clear();
      offsetsKept = 0;
      offsets = undefined;
    }
    if (!offsets) zoneOffsets.set(zone, (offsets = new Map()));
    offsets.set(quarter, offset);
    offsetsKept++;
  }
  return new Date(time + offset);
}
