import { describe, expect, it } from 'vitest';
import { checkPaths } from '../../src/enforcement/paths.ts';
import { normalizePath, plainPath, readPath, readPathEveryWay } from '../../src/kernel/paths.ts';
import { inputs } from '../../bench/kernel.ts';
import { enforceArguments } from '../../src/enforcement/call-arguments.ts';
import { isGatewayError } from '../../src/errors.ts';
import type { PathConstraint } from '../../src/protocol/constraints.ts';
import { coded } from '../helpers/coded-errors.ts';

const ws: PathConstraint = { ruleId: 'ws', args: ['path'], allow: ['/tmp/ws/**'], deny: ['**/.ssh/**'] };

/** The refusal's code and detail, or 'ok'. */
function verdict(args: Record<string, unknown>, constraints: PathConstraint[] = [ws]): string | { code: string; argument?: unknown; ruleId?: unknown } {
  try {
    checkPaths(args, constraints);
    return 'ok';
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    return { code: err.code, argument: err.data?.argument, ruleId: err.data?.ruleId };
  }
}
const denied = (argument: string, ruleId = 'ws') => ({ code: 'GH_ERR_PATH_DENIED', argument, ruleId });

describe('path normalisation', () => {
  /** The readings of a path, or why it is refused outright. */
  const forms = (path: string): readonly string[] | string => {
    try {
      return readPath(path).forms;
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('resolves . and .. and // lexically, and anchors relative paths at /', () => {
    expect(normalizePath('/tmp/ws/../ws/./a//b/')).toBe('/tmp/ws/a/b');
    expect(normalizePath('notes.txt')).toBe('/notes.txt');
    expect(normalizePath('/../../..')).toBe('/');
    expect(forms('..\\..\\etc\\passwd')).toEqual(['/..\\..\\etc\\passwd', '/etc/passwd']); // POSIX, then Windows
    expect(readPath('notes.txt').relative).toBe(true);
    expect(readPath('/notes.txt').relative).toBe(false);
  });

  it('refuses NUL and encodings that hide traversal', () => {
    expect(forms('/tmp/ws/a\0.txt')).toMatch(/NUL/);
    expect(forms('/tmp/ws/a%00.txt')).toMatch(/NUL/);
    expect(forms('/tmp/ws/%2e%2e/%2e%2e/etc/passwd')).toMatch(/hides/);
    expect(forms('/tmp/ws/%252e%252e/etc')).toMatch(/hides/); // double-encoded
    expect(forms('/tmp/ws/..%2fetc')).toMatch(/hides/);
    expect(forms('/tmp/ws/a%5c..%5cb')).toMatch(/hides/);
    expect(forms('/tmp/ws/a%20b.txt')).toEqual(['/tmp/ws/a%20b.txt', '/tmp/ws/a b.txt']);
    expect(forms('/tmp/ws/100%.txt')).toEqual(['/tmp/ws/100%.txt']); // a stray % is just a character
  });
});

describe('path constraints', () => {
  it('admits paths under allow and outside deny', () => {
    expect(verdict({ path: '/tmp/ws/notes/a.txt' })).toBe('ok');
    expect(verdict({ path: '/tmp/ws' })).toBe('ok');
    expect(verdict({ other: '/etc/passwd' })).toBe('ok'); // not a named argument
  });

  it.each([
    ['outside allow', '/etc/passwd'],
    ['a sibling that shares the prefix', '/tmp/wsx/a'],
    ['.. climbing out', '/tmp/ws/../../etc/passwd'],
    ['backslash .. climbing out', '/tmp/ws\\..\\..\\etc\\passwd'],
    ['a relative path', 'notes.txt'],
    ['relative .. from a guessed cwd', '../../etc/passwd'],
    ['percent-encoded ..', '/tmp/ws/%2e%2e/%2e%2e/etc/passwd'],
    ['double-encoded ..', '/tmp/ws/%252e%252e/secret'],
    ['encoded slash', '/tmp/ws%2f..%2f..%2fetc'],
    ['a NUL truncation', '/tmp/ws/ok.txt\0/../../../etc/passwd'],
    ['a denied dir inside allow', '/tmp/ws/home/.ssh/id_rsa'],
    ['the denied dir itself', '/tmp/ws/.ssh'],
    ['mixed case of a denied dir', '/tmp/ws/.SSH/id_rsa'],
    ['a trailing dot on a denied dir (Windows)', '/tmp/ws/.ssh./id_rsa'],
    ['an encoded dot in a denied dir', '/tmp/ws/%2essh/id_rsa'],
    ['upper case outside allow (allow is case-sensitive)', '/TMP/WS/a'],
    ['a file: URL outside allow', 'file:///etc/passwd'],
    ['a file: URL on another host', 'file://evil.example/tmp/ws/a'],
    ['overlong UTF-8 dots (`..` to a lenient decoder)', '/tmp/ws/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd'],
    ['invalid UTF-8 in the encoding', '/tmp/ws/%ff/x'],
    ['backslashes that are one file name in / on POSIX', '/etc\\..\\tmp\\ws\\x'],
    ['`.. ` segments, `..` to Windows', '/tmp/ws/.. /.. /etc/passwd'],
    ['`...` segments, `..` to Windows', '/tmp/ws/.../.../etc/passwd'],
    ['a file: URL inside allow, which a tool may take as a relative path', 'file:///tmp/ws/a'],
    ['~ (not expanded)', '~/.ssh/id_rsa'],
  ])('refuses %s', (_, path) => {
    expect(verdict({ path })).toEqual(denied('path'));
  });

  it('checks dotted argument paths and arrays element-wise, naming the element', () => {
    const c: PathConstraint = { ruleId: 'r', args: ['files', 'opts.dest'], allow: ['/tmp/ws/**'] };
    expect(verdict({ files: ['/tmp/ws/a', '/tmp/ws/b'], opts: { dest: '/tmp/ws/c' } }, [c])).toBe('ok');
    expect(verdict({ files: ['/tmp/ws/a', '/etc/shadow'] }, [c])).toEqual(denied('files.1', 'r'));
    expect(verdict({ opts: { dest: '/root' } }, [c])).toEqual(denied('opts.dest', 'r'));
    expect(verdict({ opts: [{ dest: '/tmp/ws/x' }, { dest: '/root' }] }, [c])).toEqual(denied('opts.1.dest', 'r'));
    // A named path argument that is not a string cannot be checked, so it is refused.
    expect(verdict({ files: [{ 0: '/etc/passwd' }] }, [c])).toEqual(denied('files.0', 'r'));
  });

  it('without args, finds the usual path-like names at any depth, in any spelling', () => {
    const c: PathConstraint = { ruleId: 'any', allow: ['/tmp/ws/**'] };
    expect(verdict({ text: '/etc/passwd', path: '/tmp/ws/a' }, [c])).toBe('ok');
    expect(verdict({ steps: [{ op: 'copy', source: '/tmp/ws/a', destination: '/etc/cron.d/x' }] }, [c])).toEqual(denied('steps.0.destination', 'any'));
    expect(verdict({ file_path: '/etc/passwd' }, [c])).toEqual(denied('file_path', 'any'));
    expect(verdict({ FilePath: '/etc/passwd' }, [c])).toEqual(denied('FilePath', 'any'));
    expect(verdict({ paths: ['/tmp/ws/a', '/etc/passwd'] }, [c])).toEqual(denied('paths.1', 'any'));
    expect(verdict({ opts: { cwd: '/' } }, [c])).toEqual(denied('opts.cwd', 'any'));
  });

  it('refuses a relative path against an anchored deny pattern: the working directory is unknown', () => {
    const home: PathConstraint = { ruleId: 'home', args: ['path'], deny: ['/home/u/.ssh/**'] };
    expect(verdict({ path: '/tmp/x' }, [home])).toBe('ok');
    expect(verdict({ path: '/home/u/.ssh/id_rsa' }, [home])).toEqual(denied('path', 'home'));
    expect(verdict({ path: '.ssh/id_rsa' }, [home])).toEqual(denied('path', 'home')); // from /home/u, it is the key
    expect(verdict({ path: '~/.ssh/id_rsa' }, [home])).toEqual(denied('path', 'home'));
    // Only `**/` patterns: a relative path is checked as if under /.
    const anywhere: PathConstraint = { ruleId: 'ssh', args: ['path'], deny: ['**/.ssh/**'] };
    expect(verdict({ path: 'notes.txt' }, [anywhere])).toBe('ok');
    expect(verdict({ path: '.ssh/id_rsa' }, [anywhere])).toEqual(denied('path', 'ssh'));
    expect(verdict({ path: 'a/../.SSH./id_rsa' }, [anywhere])).toEqual(denied('path', 'ssh'));
  });

  it('every rule must pass: a merge only narrows', () => {
    const a: PathConstraint = { ruleId: 'a', args: ['path'], allow: ['/tmp/**'] };
    const b: PathConstraint = { ruleId: 'b', args: ['path'], allow: ['/tmp/ws/**'] };
    expect(verdict({ path: '/tmp/ws/x' }, [a, b])).toBe('ok');
    expect(verdict({ path: '/tmp/other' }, [a, b])).toEqual(denied('path', 'b'));
  });

  it('refuses arguments nested too deep to check', () => {
    let deep: Record<string, unknown> = { path: '/etc/passwd' };
    for (let i = 0; i < 150; i++) deep = { d: deep };
    expect(() => checkPaths(deep, [{ ruleId: 'any', allow: ['/tmp/**'] }])).toThrow(coded('GH_ERR_INVALID_ARGUMENTS'));
  });

  it('refuses oversized arguments by their JSON byte size', () => {
    expect(() => enforceArguments({ text: 'é'.repeat(600) }, { maxArgBytes: 1024 }, { name: 'up' })).toThrow(expect.objectContaining({ code: 'GH_ERR_ARGS_TOO_LARGE' }));
    expect(() => enforceArguments({ text: 'é'.repeat(400) }, { maxArgBytes: 1024 }, { name: 'up' })).not.toThrow();
  });
});

describe('a path that needs no resolving is read without working out every reading, as they would', () => {
  const segments = ['a', 'a.txt', '.ssh', '..', '.', '', '...', 'a.', 'a ', ' a', 'a b', 'a%2e', '%2e%2e', 'a\\b', 'k.key2', '~', 'C:', 'file:', 'a\0b', '.. ', '. ', 'a..', '..a', '\u00e9'];
  const paths: string[] = ['/', '', 'file:///etc/passwd', 'FILE:/x', '\\srv\\x'];
  for (const lead of ['/', '', '\\', '//']) {
    for (const a of segments) {
      paths.push(`${lead}${a}`, `${lead}${a}/`);
      for (const b of segments) paths.push(`${lead}${a}/${b}`, `${lead}srv/${a}/x/${b}`, `${lead}${a}/${b}/`);
    }
  }
  for (const { args } of inputs(50, 600, 3)) paths.push((args as { path: string }).path);

  /** A reading as plain data, or the reason its error gives. */
  const outcome = (read: (path: string) => unknown, path: string): unknown => {
    try {
      const reading = read(path) as { forms: readonly string[]; relative: boolean } | undefined;
      return reading && { forms: [...reading.forms], relative: reading.relative };
    } catch (err) {
      return isGatewayError(err) ? `refused: ${String(err.data?.reason)}` : `threw ${String(err)}`;
    }
  };

  it('gives, for every path it reads, the full reading; the others go to the full reading', () => {
    let read = 0;
    for (const path of paths) {
      if (plainPath(path) === undefined) continue;
      read++;
      expect({ path, reading: outcome(plainPath, path) }).toEqual({ path, reading: outcome(readPathEveryWay, path) });
    }
    expect(read).toBeGreaterThan(500); // the shape is common among these, so the comparison covers it
    for (const path of paths) expect({ path, reading: outcome(readPath, path) }).toEqual({ path, reading: outcome(readPathEveryWay, path) });
  });
});
