/**
 * The floors for any stdio proxy: spawns `CMD ARGS` and relays its messages both ways, with no policy or audit.
 *   bytes  copies bytes, no parsing: the price of the extra process hop alone (two more pipe writes and two more
 *          wake-ups per call), which Gatehouse's stdio front pays too.
 *   json   splits lines and parses and re-serializes each message (JSON.parse, JSON.stringify), the least a proxy
 *          that reads what it forwards must do: the hop plus the JSON work, with nothing else.
 * Run: node --import tsx bench/null-relay.ts [--json] CMD ARGS...
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

const json = process.argv[2] === '--json';
const [command, ...args] = process.argv.slice(json ? 3 : 2);
if (!command) {
  console.error('usage: null-relay.ts [--json] CMD ARGS...');
  process.exit(2);
}
const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
const relay = json ? relayMessages : (from: Readable, to: Writable) => from.pipe(to);
relay(process.stdin, child.stdin);
relay(child.stdout, process.stdout);
child.once('exit', (code) => process.exit(code ?? 1));
process.stdin.once('end', () => child.stdin.end());

/** Newline-delimited JSON from `from` to `to`, each message parsed and written anew; whole lines only. */
function relayMessages(from: Readable, to: Writable): void {
  let partial = '';
  from.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    let out = '';
    for (const line of lines) if (line) out += JSON.stringify(JSON.parse(line)) + '\n';
    if (out) to.write(out);
  });
  from.once('end', () => to.end());
}
