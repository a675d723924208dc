/**
 * The floor for any stdio proxy: spawns `CMD ARGS` and copies bytes both ways, with no parsing, policy or
 * audit. Whatever this costs over a direct connection is the price of the extra process hop alone (two more
 * pipe writes and two more wake-ups per call), which Gatehouse's stdio front pays too.
 * Run: node --import tsx bench/null-relay.ts CMD ARGS...
 */
import { spawn } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: null-relay.ts CMD ARGS...');
  process.exit(2);
}
const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
process.stdin.pipe(child.stdin);
child.stdout.pipe(process.stdout);
child.once('exit', (code) => process.exit(code ?? 1));
process.stdin.once('end', () => child.stdin.end());
