import { GatewayError } from '../errors.ts';

export interface FlagSpec {
  /** Flags that take a value, by long name (without dashes); short aliases map to them. */
  values?: string[];
  booleans?: string[];
  aliases?: Record<string, string>;
}

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | true>;
  /** Everything after `--`, untouched. */
  rest: string[];
}

/** A small, strict parser: an unknown flag is a usage error (exit 2), never silently ignored. */
export function parseArgs(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const values = new Set(spec.values ?? []);
  const booleans = new Set([...(spec.booleans ?? []), 'help']);
  const positionals: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return { positionals, flags, rest: argv.slice(i + 1) };
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const [rawName, inline] = arg.replace(/^--?/, '').split(/=(.*)/s, 2);
    const name = spec.aliases?.[rawName] ?? (rawName === 'h' ? 'help' : rawName);
    if (booleans.has(name)) {
      flags[name] = true;
    } else if (values.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw usage(`--${name} needs a value`);
      flags[name] = value;
    } else {
      throw usage(`unknown option ${arg}`);
    }
  }
  return { positionals, flags, rest: [] };
}

export const usage = (message: string): GatewayError => new GatewayError('GH_ERR_USAGE', message);

export function flag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags[name];
  return typeof value === 'string' ? value : undefined;
}
