import type { ASTNode } from '@marcbachmann/cel-js';
import type { ConditionScope } from './cel.ts';
import { CEL_VARIABLES, fieldsOf, isVariable, typeCheckOf, type VariableName } from './cel-variables.ts';

/**
 * A checked CEL tree made into nested closures, for the common shapes of `when:` conditions: variables, field
 * access on maps, literals, `!`, `&&`, `||`, comparisons of two values of one type, `in` a list of strings,
 * `has()`, `size()`, the string methods, the timestamp getters without a zone, and the kernel's own functions.
 * The library's evaluator walks the tree and looks up overloads by runtime type on every call; a closure knows
 * its operation once compiled.
 *
 * The closure is a fast path, never a second CEL: it gives a value only when every operand has the one type it
 * expects, and throws `Unsure` otherwise (another type, a missing key, an error left of `&&` or `||`, which the
 * library may absorb). The caller then asks the library, whose answer (and error text) is the decision's. A
 * helper's own error (a relative path, a URL tools read differently) passes through unchanged, as the library
 * passes it: operands are evaluated in the library's order (function arguments last first), so the first error
 * met is the library's. Trees with other nodes get no closure.
 */

type Closure = (scope: ConditionScope) => unknown;

/** What a registered function takes: each argument's kind, checked before the call. */
export type ArgumentKind = 'string' | 'timestamp';

export interface ClosureFunction {
  readonly args: readonly ArgumentKind[];
  readonly fn: (...args: never[]) => unknown;
  /**
   * A two-argument function with its last argument given, when a condition writes it as a literal string: what reading
   * it costs (a pattern compiled, a directory normalised) is paid once, at load. It must answer and throw as `fn`.
   */
  readonly bind?: (last: string) => (first: string) => unknown;
}

/** What `ConditionScope.arg` says when the arguments are not an object: only the library knows what `args` is then. */
export const NOT_A_MAP = Symbol('the arguments are not an object');

/** Thrown when the closure cannot vouch for the library's answer; it carries nothing, the library will say why. */
class Unsure extends Error {}
export const UNSURE = new Unsure();
const unsure = (): never => {
  throw UNSURE;
};

const STRING_METHODS: Readonly<Record<string, (receiver: string, arg: string) => boolean>> = {
  contains: (s, t) => s.includes(t),
  startsWith: (s, t) => s.startsWith(t),
  endsWith: (s, t) => s.endsWith(t),
};

/** The zone-less timestamp getters: UTC, as the library reads them. */
const TIMESTAMP_GETTERS: Readonly<Record<string, (d: Date) => number>> = {
  getHours: (d) => d.getUTCHours(),
  getMinutes: (d) => d.getUTCMinutes(),
  getSeconds: (d) => d.getUTCSeconds(),
  getDayOfWeek: (d) => d.getUTCDay(),
  getDate: (d) => d.getUTCDate(),
  getMonth: (d) => d.getUTCMonth(),
  getFullYear: (d) => d.getUTCFullYear(),
};

/** Code points, as CEL's `size(string)` counts them. */
function codePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

/** The closure for a condition's tree, or undefined when a node is not one it handles. */
export function closureOf(root: ASTNode, functions: Readonly<Record<string, ClosureFunction>>): Closure | undefined {
  try {
    return compile(root, functions);
  } catch (err) {
    if (err === UNSURE) return undefined;
    throw err;
  }
}

function compile(node: ASTNode, functions: Readonly<Record<string, ClosureFunction>>): Closure {
  const sub = (child: ASTNode) => compile(child, functions);
  const args = node.args as unknown;
  switch (node.op) {
    case 'value': {
      const value = args;
      return () => value;
    }
    case 'id': {
      const name = args as string;
      if (!isVariable(name)) return unsure();
      const read: Closure = CEL_VARIABLES[name].read;
      const is = typeCheckOf(name);
      return (scope) => {
        const value = read(scope);
        return is(value) ? value : unsure();
      };
    }
    case '.': {
      const [of, key] = args as [ASTNode, string];
      if (isArgs(of)) return (scope) => argument(scope, key) ?? unsure();
      const field = fieldReader(of, key);
      const left = sub(of);
      return (scope) => field(left(scope));
    }
    case '!_': {
      const operand = sub(args as ASTNode);
      return (scope) => {
        const v = operand(scope);
        return typeof v === 'boolean' ? !v : unsure();
      };
    }
    case '&&':
    case '||': {
      const [l, r] = (args as ASTNode[]).map(sub);
      const stop = node.op === '||';
      return (scope) => {
        let a: unknown;
        try {
          a = l(scope);
        } catch {
          // The library may absorb an error on the left (`error || true` is true): it decides.
          return unsure();
        }
        if (typeof a !== 'boolean') return unsure();
        if (a === stop) return a;
        const b = r(scope);
        return typeof b === 'boolean' ? b : unsure();
      };
    }
    case '==':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=':
      return comparison(node.op, args as [ASTNode, ASTNode], sub);
    case 'in': {
      const [l, r] = (args as ASTNode[]).map(sub);
      return (scope) => {
        const v = l(scope);
        const list = r(scope);
        if (typeof v !== 'string' || !Array.isArray(list)) return unsure();
        let found = false;
        for (const item of list) {
          if (typeof item !== 'string') return unsure();
          if (item === v) found = true;
        }
        return found;
      };
    }
    case 'list': {
      const items = (args as ASTNode[]).map(sub);
      return (scope) => {
        const values = new Array<unknown>(items.length);
        for (let i = items.length - 1; i >= 0; i--) values[i] = items[i](scope); // last first, as the library
        return values;
      };
    }
    case 'call':
      return call(args as [string, ASTNode[]], functions, sub);
    case 'rcall':
      return method(args as [string, ASTNode, ASTNode[]], sub);
    default:
      return unsure();
  }
}

const isArgs = (node: ASTNode): boolean => node.op === 'id' && node.args === 'args';

/**
 * Literals and `args.key` are read inside the closure that uses them (`args.size > 10`, `pathUnder(args.path, "/w")`,
 * `args.path.endsWith(".key")`), not by closures of their own: each closure is an object and its context another, and
 * a decision reads its conditions from memory the cache has mostly dropped (one per rule, thousands of rules).
 */
const isLiteral = (node: ASTNode): boolean => node.op === 'value';
const argumentKey = (node: ASTNode): string | undefined => (node.op === '.' && isArgs((node.args as [ASTNode, string])[0]) ? (node.args as [ASTNode, string])[1] : undefined);

/** `args.key`: from the scope's own reader when it has one, which converts that argument alone. */
function argument(scope: ConditionScope, key: string): unknown {
  if (!scope.arg) {
    const args = scope.args;
    return args instanceof Map ? args.get(key) : unsure();
  }
  const value = scope.arg(key);
  return value === NOT_A_MAP ? unsure() : value;
}

/** Field access on a variable's map (`args.path`, `labels.env`) or on a map inside `args` or `session`. */
function fieldReader(of: ASTNode, key: string): (value: unknown) => unknown {
  const declared = of.op !== 'id' ? 'dyn' : isVariable(of.args as string) ? fieldsOf(of.args as VariableName) : undefined;
  if (declared === undefined) return unsure();
  if (declared === 'dyn') {
    return (map) => {
      if (!(map instanceof Map)) return unsure();
      const v = map.get(key);
      return v === undefined ? unsure() : v;
    };
  }
  const held = declared === 'bool' ? 'boolean' : declared;
  return (record) => {
    if (record === null || typeof record !== 'object' || record instanceof Map || !Object.hasOwn(record, key)) return unsure();
    const v = (record as Record<string, unknown>)[key];
    return typeof v === held ? v : unsure();
  };
}

const COMPARE: Readonly<Record<string, (a: Comparable, b: Comparable) => boolean>> = {
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/** Whether values of this type are compared: booleans only for equality (the library orders them, but conditions do not). */
const comparable = (type: string, equality: boolean): boolean => type === 'string' || type === 'bigint' || type === 'number' || (equality && type === 'boolean');

function comparison(op: string, [ln, rn]: [ASTNode, ASTNode], sub: (n: ASTNode) => Closure): Closure {
  const compare = COMPARE[op];
  const equality = op === '==' || op === '!=';
  if (isLiteral(rn)) {
    const b = rn.args as Comparable;
    const type = typeof b;
    const ok = comparable(type, equality);
    const key = argumentKey(ln);
    if (key !== undefined) {
      return (scope) => {
        const a = argument(scope, key) ?? unsure();
        return ok && typeof a === type ? compare(a as Comparable, b) : unsure();
      };
    }
    const l = sub(ln);
    return (scope) => {
      const a = l(scope);
      return ok && typeof a === type ? compare(a as Comparable, b) : unsure();
    };
  }
  const l = sub(ln);
  const r = sub(rn);
  return (scope) => {
    const a = l(scope);
    const b = r(scope);
    const type = typeof a;
    // One type on both sides, and one that is compared.
    if (type !== typeof b || !comparable(type, equality)) return unsure();
    return compare(a as Comparable, b as Comparable);
  };
}
type Comparable = string | bigint | number | boolean;

function call([name, argNodes]: [string, ASTNode[]], functions: Readonly<Record<string, ClosureFunction>>, sub: (n: ASTNode) => Closure): Closure {
  if (name === 'has') return presence(argNodes, sub);
  const args = argNodes.map(sub);
  if (name === 'size' && args.length === 1) {
    const [of] = args;
    return (scope) => {
      const v = of(scope);
      if (typeof v === 'string') return BigInt(codePoints(v));
      if (Array.isArray(v)) return BigInt(v.length);
      if (v instanceof Map) return BigInt(v.size);
      return unsure();
    };
  }
  const known = Object.hasOwn(functions, name) ? functions[name] : undefined;
  if (!known || known.args.length !== args.length) return unsure();
  const { fn, args: kinds } = known;
  const call = fn as (...values: unknown[]) => unknown;
  if (args.length === 1) {
    const [a] = args;
    const [ka] = kinds;
    return (scope) => {
      const x = a(scope);
      return ofKind(x, ka) ? call(x) : unsure();
    };
  }
  if (args.length === 2 && isLiteral(argNodes[1])) {
    // A literal last, read first as the library does: it cannot fail, so the order is the argument's alone.
    const y = argNodes[1].args;
    const [ka, kb] = kinds;
    const ok = ofKind(y, kb);
    const given = (ok && known.bind && boundTo(known.bind, y as string)) || ((x: unknown) => call(x, y));
    const key = argumentKey(argNodes[0]);
    if (key !== undefined) {
      return (scope) => {
        const x = argument(scope, key) ?? unsure();
        return ok && ofKind(x, ka) ? given(x as string) : unsure();
      };
    }
    const [a] = args;
    return (scope) => {
      const x = a(scope);
      return ok && ofKind(x, ka) ? given(x as string) : unsure();
    };
  }
  if (args.length === 2) {
    const [a, b] = args;
    const [ka, kb] = kinds;
    return (scope) => {
      const y = b(scope); // last first, as the library
      const x = a(scope);
      return ofKind(x, ka) && ofKind(y, kb) ? call(x, y) : unsure();
    };
  }
  return unsure();
}

/** The function bound to its literal; undefined when binding throws, so that the error is met where `fn` would meet it. */
function boundTo(bind: NonNullable<ClosureFunction['bind']>, literal: string): ((first: string) => unknown) | undefined {
  try {
    return bind(literal);
  } catch {
    return undefined;
  }
}

const ofKind = (value: unknown, kind: ArgumentKind): boolean => (kind === 'string' ? typeof value === 'string' : value instanceof Date);

/** `has(m.key)` on one level of a `dyn` map (`args`, `session`): whether the key is there. */
function presence(argNodes: ASTNode[], sub: (n: ASTNode) => Closure): Closure {
  const [field] = argNodes;
  if (argNodes.length !== 1 || field.op !== '.') return unsure();
  const [of, key] = field.args as [ASTNode, string];
  if (of.op !== 'id' || !isVariable(of.args as string) || fieldsOf(of.args as VariableName) !== 'dyn') return unsure();
  if (isArgs(of)) return (scope) => argument(scope, key) !== undefined;
  const map = sub(of);
  return (scope) => {
    const m = map(scope);
    return m instanceof Map ? m.get(key) !== undefined : unsure();
  };
}

function method([name, receiverNode, argNodes]: [string, ASTNode, ASTNode[]], sub: (n: ASTNode) => Closure): Closure {
  const receiver = sub(receiverNode);
  if (Object.hasOwn(STRING_METHODS, name) && argNodes.length === 1) {
    const test = STRING_METHODS[name];
    if (isLiteral(argNodes[0]) && typeof argNodes[0].args === 'string') {
      const t = argNodes[0].args;
      const key = argumentKey(receiverNode);
      if (key !== undefined) {
        return (scope) => {
          const s = argument(scope, key) ?? unsure();
          return typeof s === 'string' ? test(s, t) : unsure();
        };
      }
      return (scope) => {
        const s = receiver(scope);
        return typeof s === 'string' ? test(s, t) : unsure();
      };
    }
    const arg = sub(argNodes[0]);
    return (scope) => {
      const t = arg(scope); // the receiver last, as the library
      const s = receiver(scope);
      return typeof s === 'string' && typeof t === 'string' ? test(s, t) : unsure();
    };
  }
  if (Object.hasOwn(TIMESTAMP_GETTERS, name) && argNodes.length === 0) {
    const get = TIMESTAMP_GETTERS[name];
    return (scope) => {
      const d = receiver(scope);
      return d instanceof Date ? BigInt(get(d)) : unsure();
    };
  }
  return unsure();
}
