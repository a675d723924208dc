import { keepingLastAnswer } from './last-answer.ts';

/**
 * `sqlStatements(sql)`: the statements a SQL text holds, as PostgreSQL reads them, each normalised so that a rule
 * can look at what runs rather than at the text: comments removed (`--` and nested `/* … *\/`), split at `;`
 * outside literals, keywords and unquoted identifiers upper-cased, whitespace collapsed to one space, and every
 * string literal (`'…'`, `E'…'`, `$tag$…$tag$`) and quoted identifier (`"…"`) replaced by `?` and `"?"`, so that
 * no literal can look like a keyword. `/* x *\/ dRoP\nTABLE t` and `SELECT 1; drop table t` give `DROP TABLE T`.
 *
 * What it cannot read, it refuses (throws, so a deny rule matches): an unterminated literal, comment or quoted
 * identifier, or more than 64 statements. It does not know what a function called by a SELECT does
 * (`SELECT pg_terminate_backend(…)`, `dblink_exec`, `lo_unlink`): a rule must name those.
 */
const MAX_STATEMENTS = 64;

export const sqlStatements = keepingLastAnswer(readSqlStatements);

function readSqlStatements(sql: string): string[] {
  const out: string[] = [];
  let current = '';
  const end = () => {
    const statement = current.replace(/\s+/g, ' ').trim().toUpperCase();
    if (statement !== '') out.push(statement);
    if (out.length > MAX_STATEMENTS) throw new Error(`more than ${MAX_STATEMENTS} statements`);
    current = '';
  };
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? sql.length : eol;
      current += ' ';
    } else if (c === '/' && next === '*') {
      i = commentEnd(sql, i);
      current += ' ';
    } else if (c === "'" || ((c === 'E' || c === 'e') && next === "'" && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? ''))) {
      i = quotedEnd(sql, c === "'" ? i : i + 1, "'", c !== "'");
      current += '?';
    } else if (c === '"') {
      i = quotedEnd(sql, i, '"', false);
      current += '"?"';
    } else if (c === '$' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(sql.slice(i)) && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? '')) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))![0];
      const close = sql.indexOf(tag, i + tag.length);
      if (close < 0) throw new Error('an unterminated dollar-quoted string');
      i = close + tag.length - 1;
      current += '?';
    } else if (c === ';') {
      end();
    } else {
      // A run of plain text up to the next character that may start a literal, a comment or a statement's end.
      let j = i + 1;
      while (j < sql.length && !"-/'\"$;eE".includes(sql[j])) j++;
      current += sql.slice(i, j);
      i = j - 1;
    }
  }
  end();
  return out;
}

/** The index of the `*\/` that closes the (possibly nested) comment opened at `start`. */
function commentEnd(sql: string, start: number): number {
  let depth = 0;
  for (let i = start; i < sql.length - 1; i++) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i++;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      i++;
      if (--depth === 0) return i;
    }
  }
  throw new Error('an unterminated comment');
}

/** The index of the quote that closes the literal opened at `start` (doubled quotes inside; backslashes in E'…'). */
function quotedEnd(sql: string, start: number, quote: string, escapes: boolean): number {
  for (let i = start + 1; i < sql.length; i++) {
    if (escapes && sql[i] === '\\') i++;
    else if (sql[i] === quote) {
      if (sql[i + 1] === quote) i++;
      else return i;
    }
  }
  throw new Error(quote === "'" ? 'an unterminated string literal' : 'an unterminated quoted identifier');
}
