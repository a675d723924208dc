import { usage } from '../../args.ts';

/** Takes every `--set key=value` out of argv (parseArgs keeps one value per flag). */
export function takeSettings(argv: readonly string[]): { settings: [string, string][]; argv: string[] } {
  const settings: [string, string][] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg !== '--set' && !arg.startsWith('--set=')) {
      rest.push(arg);
      continue;
    }
    const text = arg === '--set' ? argv[++i] : arg.slice('--set='.length);
    const eq = text === undefined ? -1 : text.indexOf('=');
    if (eq < 1) throw usage(`--set needs KEY=VALUE${text ? `, got ${JSON.stringify(text)}` : ''}`);
    settings.push([text.slice(0, eq), text.slice(eq + 1)]);
  }
  return { settings, argv: rest };
}
