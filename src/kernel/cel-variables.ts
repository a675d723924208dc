import type { ConditionScope } from './cel.ts';

/**
 * Every variable a `when:` condition may read, written once: its CEL type (what the library declares and checks a
 * value against), how a closure reads it from the scope (a named property read stays cheap where `scope[name]`
 * would look the name up every time), and whether reading it makes a condition depend on the call itself rather
 * than on who calls which tool. Keyed by the scope's fields, so a field without a variable, or the other way round,
 * does not compile.
 */
export const CEL_VARIABLES: { readonly [Name in Exclude<keyof ConditionScope, 'arg'>]: Variable<Name> } = {
  tool: { type: 'string', read: (s) => s.tool },
  server: { type: 'string', read: (s) => s.server },
  principal: { type: 'string', read: (s) => s.principal },
  tenant: { type: 'string', read: (s) => s.tenant },
  args: { type: 'map<string, dyn>', read: (s) => s.args, readsCall: true },
  labels: { type: 'map<string, string>', read: (s) => s.labels },
  annotations: { type: 'map<string, bool>', read: (s) => s.annotations },
  riskTags: { type: 'list<string>', read: (s) => s.riskTags },
  now: { type: 'google.protobuf.Timestamp', read: (s) => s.now, readsCall: true },
  kind: { type: 'string', read: (s) => s.kind },
  method: { type: 'string', read: (s) => s.method, readsCall: true },
  uri: { type: 'string', read: (s) => s.uri },
  prompt: { type: 'string', read: (s) => s.prompt },
  session: { type: 'map<string, dyn>', read: (s) => s.session, readsCall: true },
};

export type VariableName = keyof typeof CEL_VARIABLES;

interface Variable<Name extends keyof ConditionScope> {
  readonly type: CelType;
  readonly read: (scope: ConditionScope) => ConditionScope[Name];
  /** Reading it makes a condition undecidable for a listing, which has no call. */
  readonly readsCall?: true;
}

type CelType = 'string' | 'list<string>' | 'google.protobuf.Timestamp' | `map<string, ${MapField}>`;
type MapField = 'dyn' | 'string' | 'bool';

export const isVariable = (name: string): name is VariableName => Object.hasOwn(CEL_VARIABLES, name);

/** What a map variable's fields hold, by its declared type (`dyn`: anything); undefined for a variable that is no map. */
export function fieldsOf(name: VariableName): MapField | undefined {
  return /^map<string, (\w+)>$/.exec(CEL_VARIABLES[name].type)?.[1] as MapField | undefined;
}

/**
 * The check of a value against the variable's declared type, as the library makes it: another value is its error,
 * not ours. It tells a map and a list by their `constructor` (registry.js), so an object with a key of that name is
 * no map to it; these ask the same. A Set, a list to the library, is left to it (the closures read arrays).
 */
export function typeCheckOf(name: VariableName): (value: unknown) => boolean {
  const type = CEL_VARIABLES[name].type;
  if (type === 'string') return IS_STRING;
  if (type === 'list<string>') return IS_LIST;
  if (type === 'google.protobuf.Timestamp') return IS_TIMESTAMP;
  return IS_MAP;
}

const IS_STRING = (v: unknown) => typeof v === 'string';
const IS_MAP = (v: unknown) => typeof v === 'object' && v !== null && (v.constructor === Object || v.constructor === undefined || v.constructor === Map);
const IS_LIST = (v: unknown) => Array.isArray(v) && v.constructor === Array;
const IS_TIMESTAMP = (v: unknown) => v instanceof Date;
