import { z } from 'zod';
import { annotationMatchSchema } from '../kernel/hints.ts';

/** A pack's name: its rule ids' namespace and, unless the install says otherwise, its upstream's name. */
export const PACK_NAME = /^[a-z0-9][a-z0-9-]{0,23}$/;

const semver = z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, 'expected a version such as 1.2.0 (semver)');

/** One install parameter: its type, whether it must be given, its default, and what the value may be. */
const paramSpecSchema = z
  .strictObject({
    type: z.enum(['string', 'path', 'integer', 'boolean', 'list']),
    description: z.string().optional(),
    required: z.boolean().default(false),
    default: z.unknown().optional(),
    /** `integer` only: the smallest and largest value. */
    min: z.number().int().optional(),
    max: z.number().int().optional(),
    /** `string` and `list` (each entry): the values allowed. */
    oneOf: z.array(z.string()).min(1).optional(),
  })
  .refine((p) => !(p.required && p.default !== undefined), 'a required parameter has no default (it would never be used)')
  .refine((p) => p.required || p.default !== undefined, 'an optional parameter needs a default');

export type ParamSpec = z.output<typeof paramSpecSchema>;

/** `pack.yaml`: what the pack is, which upstreams it fits, and how to run them. */
export const packManifestSchema = z.strictObject({
  name: z.string().regex(PACK_NAME, 'pack names are 1-24 lowercase letters, digits or dashes, starting with a letter or digit'),
  version: semver,
  description: z.string().min(1),
  homepage: z.url().optional(),
  /** The Gatehouse versions the pack works with: `>=0.1.0 <2.0.0`, `^0.1.0`, `~0.1.2`, `0.1.x`. */
  requires: z.string().min(1).optional(),
  /**
   * How an upstream this pack is for is recognised; any one that fits is a match. Packages and commands are known
   * before the server starts; serverNames and tools once it has answered initialize and tools/list.
   */
  match: z
    .strictObject({
      /** npm packages a launcher (npx, bunx, pnpm dlx) runs, without version. */
      packages: z.array(z.string().min(1)).default([]),
      /** Command names (the file name of the command run). */
      commands: z.array(z.string().min(1)).default([]),
      /** `serverInfo.name` from the upstream's initialize answer. */
      serverNames: z.array(z.string().min(1)).default([]),
      /** Tool names the server lists: it fits when it lists every one of them (a set only this server has). */
      tools: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  /** How to run the server: `${param:NAME}` in args is replaced by the install's value. */
  upstream: z.strictObject({
    /** The upstream name the pack governs unless an install names another (what `wrap` derives from the command). */
    name: z.string().regex(/^[A-Za-z0-9-]{1,24}$/, 'upstream names are 1-24 letters, digits or dashes'),
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    /** Names of environment variables the server needs (their values are the user's, never the pack's). */
    env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')).default([]),
  }),
  params: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,39}$/, 'parameter names are letters, digits and _'), paramSpecSchema).default({}),
  /** The parameters the pack's own tests (tests/*_test.yaml) are installed with. */
  testParams: z.record(z.string(), z.unknown()).default({}),
});

export type PackManifest = z.output<typeof packManifestSchema>;

/** The arguments of a tool that hold something constraints look at. */
const argRolesSchema = z.strictObject({
  paths: z.array(z.string().min(1)).optional(),
  urls: z.array(z.string().min(1)).optional(),
  commands: z.array(z.string().min(1)).optional(),
  sql: z.array(z.string().min(1)).optional(),
});

export type ArgRoles = z.output<typeof argRolesSchema>;
export const ARG_ROLES = ['paths', 'urls', 'commands', 'sql'] as const;

const toolEntrySchema = z.strictObject({
  /** What the pack asserts over the server's own annotations (hints, not trust). */
  annotations: annotationMatchSchema.optional(),
  riskTags: z.array(z.string().regex(/^[a-z0-9-]{1,40}$/, 'risk tags are lowercase letters, digits and dashes')).default([]),
  args: argRolesSchema.default({}),
  /** `sha256:<hex>` of the tool's definition as the server lists it (what Gatehouse pins), at `server.version`. */
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 hex digits>'),
  /**
   * The server writes the machine it runs on into this definition, so `digest` is the one on the machine the pack
   * was written on: `pack add` still compares it (a warning), but a gateway does not hold the tool to it, and pins
   * the first definition it sees instead.
   */
  machineDependent: z.boolean().optional(),
  /** Free text: where the server's own annotations are wrong or missing, and why the pack says otherwise. */
  note: z.string().optional(),
});

export type ToolEntry = z.output<typeof toolEntrySchema>;

/** `tools.yaml`: the facts of every tool the server lists, at the version the pack was written against. */
export const packToolsSchema = z.strictObject({
  server: z.strictObject({ package: z.string().min(1).optional(), name: z.string().min(1).optional(), version: z.string().min(1) }),
  tools: z.record(z.string().min(1), toolEntrySchema),
});

export type PackTools = z.output<typeof packToolsSchema>;
