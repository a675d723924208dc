import { keepingLastAnswer } from './last-answer.ts';

/**
 * `shellCommands(line)`: every simple command a POSIX shell line runs, each as its words joined by one space, read
 * the way the shell reads them, so that a rule can look at what runs rather than at the text: quotes and backslash
 * escapes removed; split at `;`, `&`, `&&`, `||`, `|`, newlines, and into `$(…)`, backticks, `(…)` and `{ …; }`;
 * leading `VAR=value` assignments and wrappers (`sudo`, `env`, `command`, `exec`, `nohup`, `time`, `nice`, `doas`,
 * `xargs`) dropped; the program named by its file name (`/bin/rm` is `rm`); short option clusters spread (`-rf` is
 * `-r -f`); and the script of `sh -c`, `bash -c` and `eval` read as commands too. `rm -rf /` written as
 * `"/bin/rm" -fr /`, `r\m -r -f /` or `x; sudo rm -r -f /` all give `rm -r -f /`.
 *
 * What it cannot see, it refuses (throws, so a deny rule matches and an allow rule does not): a program that is
 * computed (`$X`, `$(…)`, a glob), unbalanced quotes or brackets, a here-document, or more than 64 commands.
 * Aliases, functions and PATH lookups are the shell's and are not followed.
 */
const WRAPPERS = new Set(['sudo', 'doas', 'env', 'command', 'exec', 'nohup', 'time', 'nice', 'xargs', 'builtin']);
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh']);
const MAX_COMMANDS = 64;

export const shellCommands = keepingLastAnswer(readShellCommands);

function readShellCommands(line: string): string[] {
  const out: string[] = [];
  readLine(line, out, 0);
  return out;
}

function readLine(line: string, out: string[], depth: number): void {
  if (depth > 4) throw new Error('shell commands nest too deep to read');
  let words: string[] = [];
  let word: string | undefined;
  let computed = false;
  const endWord = () => {
    if (word !== undefined) words.push(computed ? `\u0000${word}` : word);
    word = undefined;
    computed = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) addCommand(words, out, depth);
    words = [];
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\') {
      if (line[i + 1] === '\n') i++;
      else word = (word ?? '') + (line[++i] ?? '');
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('an unbalanced quote');
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let text = '';
      for (i++; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && '"\\$`\n'.includes(line[i + 1] ?? '')) text += line[++i];
        else if (line[i] === '$' && line[i + 1] === '(') {
          const end = closing(line, i + 1, '(', ')');
          readLine(line.slice(i + 2, end), out, depth + 1);
          computed = true;
          text += line.slice(i, end + 1);
          i = end;
        } else if (line[i] === '`') {
          const end = line.indexOf('`', i + 1);
          if (end < 0) throw new Error('an unbalanced backtick');
          readLine(line.slice(i + 1, end), out, depth + 1);
          computed = true;
          i = end;
        } else {
          if (line[i] === '$') computed = true;
          text += line[i];
        }
      }
      if (i >= line.length) throw new Error('an unbalanced quote');
      word = (word ?? '') + text;
    } else if (c === '$' && line[i + 1] === '(') {
      const end = closing(line, i + 1, '(', ')');
      readLine(line.slice(i + 2, end), out, depth + 1);
      word = (word ?? '') + line.slice(i, end + 1);
      computed = true;
      i = end;
    } else if (c === '`') {
      const end = line.indexOf('`', i + 1);
      if (end < 0) throw new Error('an unbalanced backtick');
      readLine(line.slice(i + 1, end), out, depth + 1);
      word = (word ?? '') + line.slice(i, end + 1);
      computed = true;
      i = end;
    } else if (c === '(' && word === undefined) {
      const end = closing(line, i, '(', ')');
      endCommand();
      readLine(line.slice(i + 1, end), out, depth + 1);
      i = end;
    } else if ((c === '{' || c === '}') && word === undefined && (line[i + 1] === undefined || /[\s;]/.test(line[i + 1]))) {
      endCommand();
    } else if (c === '<' && line[i + 1] === '<') {
      throw new Error('a here-document');
    } else if (';&|\n'.includes(c)) {
      endCommand();
    } else if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
    } else if (c === '#' && word === undefined) {
      const end = line.indexOf('\n', i);
      i = end < 0 ? line.length : end - 1;
    } else {
      if (c === '$') computed = true;
      word = (word ?? '') + c;
    }
  }
  endCommand();
}

/** The index of the bracket that closes the one at `open` (quotes inside skipped). */
function closing(line: string, open: number, left: string, right: string): number {
  let depth = 0;
  for (let i = open; i < line.length; i++) {
    const c = line[i];
    if (c === '\\') i++;
    else if (c === "'") {
      i = line.indexOf("'", i + 1);
      if (i < 0) break;
    } else if (c === left) depth++;
    else if (c === right && --depth === 0) return i;
  }
  throw new Error(`an unbalanced ${left}`);
}

function addCommand(raw: string[], out: string[], depth: number): void {
  let words = raw;
  // Assignments and wrappers before the program, and the wrappers' own options (`sudo -u root`, `env -i`).
  for (;;) {
    while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) words = words.slice(1);
    if (words.length === 0 || !WRAPPERS.has(basename(words[0]))) break;
    words = words.slice(1);
    while (words.length > 0 && words[0].startsWith('-')) words = words.slice(words[0] === '-u' || words[0] === '-n' ? 2 : 1);
  }
  if (words.length === 0) return;
  if (words[0].startsWith('\u0000')) throw new Error('the program a command runs is computed ($…, `…`), so what it runs cannot be known');
  const program = basename(words[0]);
  if (/[*?[]/.test(program)) throw new Error('the program a command runs is a pattern, so what it runs cannot be known');
  const rest = words.slice(1).map((w) => w.replace(/^\u0000/, ''));
  const args = rest.flatMap((w) => (/^-[A-Za-z]{2,}$/.test(w) ? [...w.slice(1)].map((f) => `-${f}`) : [w]));
  out.push([program, ...args].join(' '));
  if (out.length > MAX_COMMANDS) throw new Error(`more than ${MAX_COMMANDS} commands`);
  // The script a shell or eval is given runs too.
  const c = rest.findIndex((w) => /^-[A-Za-z]*c[A-Za-z]*$/.test(w));
  const script = program === 'eval' ? rest.join(' ') : SHELLS.has(program) && c >= 0 ? rest[c + 1] : undefined;
  if (script !== undefined) readLine(script, out, depth + 1);
}

const basename = (word: string): string => word.slice(word.lastIndexOf('/') + 1);
