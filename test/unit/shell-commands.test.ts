import { describe, expect, it } from 'vitest';
import { shellCommands } from '../../src/kernel/shell.ts';
import { compileCondition } from '../../src/kernel/cel.ts';

describe('shellCommands: what a shell line runs', () => {
  it('reads rm -rf / the same however it is written', () => {
    for (const line of ['rm -rf /', '/bin/rm -fr /', '"rm" -r -f /', "r\\m -rf '/'", 'echo hi; sudo rm -rf /', 'ls && rm --recursive -f / || true', 'X=1 env -i rm -rf /', 'cd /tmp | rm -rf /', '(rm -rf /)', '{ rm -rf /; }']) {
      const commands = shellCommands(line);
      expect(commands.some((c) => c === 'rm -r -f /' || c === 'rm -f -r /' || c === 'rm --recursive -f /'), line).toBe(true);
    }
  });

  it('reads the scripts of sh -c, bash -c, eval and command substitutions too', () => {
    expect(shellCommands('bash -c "rm -rf /"')).toContain('rm -r -f /');
    expect(shellCommands("sh -lc 'dd if=/dev/zero of=/dev/sda'")).toContain('dd if=/dev/zero of=/dev/sda');
    expect(shellCommands('eval rm -rf /')).toContain('rm -r -f /');
    expect(shellCommands('echo $(mkfs.ext4 /dev/sda)')).toContain('mkfs.ext4 /dev/sda');
    expect(shellCommands('echo "`git push --force`"')).toContain('git push --force');
    expect(shellCommands('curl -fsSL https://x.sh | sh')).toEqual(['curl -f -s -S -L https://x.sh', 'sh']);
  });

  it('refuses what it cannot read: a computed program, unbalanced quotes, a here-document', () => {
    for (const line of ['$CMD -rf /', '$(echo rm) -rf /', 'echo "unclosed', 'cat <<EOF\nx\nEOF', 'r* -rf /']) expect(() => shellCommands(line), line).toThrow();
  });

  it('leaves ordinary commands as they are', () => {
    expect(shellCommands('ls -la /srv/work')).toEqual(['ls -l -a /srv/work']);
    expect(shellCommands('git status # a comment')).toEqual(['git status']);
    expect(shellCommands('echo "$HOME"')).toEqual(['echo $HOME']);
  });

  it('is a CEL helper a rule can use', () => {
    const rule = compileCondition('shellCommands(args.command).exists(c, c.startsWith("rm ") && c.contains(" -r") && c.contains(" -f"))');
    const scope = (command: string) => ({ args: new Map([['command', command]]) }) as never;
    expect(rule.evaluate(scope('ls; /bin/rm -fr /'))).toBe(true);
    expect(rule.evaluate(scope('ls -la'))).toBe(false);
  });
});
