// The secret-key rule (issue 10, item 14): which argument keys are masked wherever Gatehouse records or shows
// arguments, case- and accent-folded. README, "Constraints in detail", states the same rule.
import { describe, expect, it } from 'vitest';
import { isSecretKey } from '../../src/enforcement/secret-keys.ts';
import { redactArguments } from '../../src/enforcement/redact.ts';
import { previewArguments } from '../../src/approvals/preview.ts';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const SECRET = [
  // what the issue found stored in the clear
  'pwd', 'pässword',
  // case, accents, compatibility forms, separators
  'password', 'PASSWORD', 'Password', 'PÄSSWORD', 'ｐａｓｓｗｏｒｄ', 'Paßwort', 'pass_word', 'pass-word', 'db_password', 'newPassword2',
  'passwd', 'passphrase', 'passcode', 'pass', 'dbpass', 'userPass', 'mot_de_passe', 'contraseña', 'senha', 'pw', 'adminPw',
  'secret', 'client_secret', 'Secret-Key', 'token', 'access_token', 'refreshToken', 'X-Auth-Token', 'OAuth2Token', 'max_tokens',
  'apiKey', 'api_key', 'api-key', 'APIKey', 'X-API-KEY', 'accessKey', 'aws_access_key_id', 'privateKey', 'private_key', 'PRIVATE KEY', 'sshKey',
  'auth', 'basicAuth', 'x-auth', 'oauth', 'authorization', 'Proxy-Authorization', 'authorisation', 'authentication',
  'credential', 'credentials', 'creds', 'cookie', 'Set-Cookie', 'session', 'sessionId', 'session_key', 'sid', 'jwt', 'bearer',
  'pin', 'pinCode', 'otp', 'totp', 'mfa_code', 'dsn', 'connection_string', 'signingKey', 'encryption_key', 'masterKey',
];

const PLAIN = [
  'path', 'url', 'text', 'note', 'value', 'key', 'id', 'name', 'query', 'content', 'limit', 'cwd',
  // words with a fragment-like part that say nothing secret
  'author', 'authorName', 'authored_by', 'authenticated', 'unauthorized', 'passenger', 'passengerCount', 'passage', 'passive',
  'passport', 'passthrough', 'tests_passed', 'passes', 'bypass', 'bypass_cache', 'compass', 'surpass', 'keyboard', 'monkey',
  'primaryKey', 'sortKey', 'spin', 'pinned', 'side', 'footprint', 'description',
];

describe('secret-looking keys', () => {
  it.each(SECRET)('%s is secret', (key) => expect(isSecretKey(key)).toBe(true));
  it.each(PLAIN)('%s is not', (key) => expect(isSecretKey(key)).toBe(false));

  it('is the rule of everything that records or shows arguments: the audit input and the approval preview', () => {
    const args = { pwd: 'pw-1', pässword: 'pw-2', nested: { SessionID: 's-3' }, author: 'ann' };
    expect(redactArguments(args)).toEqual({ pwd: '[REDACTED]', pässword: '[REDACTED]', nested: { SessionID: '[REDACTED]' }, author: 'ann' });
    const preview = previewArguments(args);
    for (const secret of ['pw-1', 'pw-2', 's-3']) expect(preview).not.toContain(secret);
    expect(preview).toContain('ann');
  });
});

describe('the log', () => {
  it('masks values under secret-looking keys at any depth of a line\'s fields', () => {
    const log = join(resolve(import.meta.dirname, '../../src'), 'log.ts');
    const script = `import { createLogger } from ${JSON.stringify(log)}; createLogger('info').error('x', { event: { data: { pässword: 'pw-1', pwd: 'pw-2', note: 'kept' } } });`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const line = JSON.parse(run.stderr.trim()) as { event: { data: Record<string, string> } };
    expect(line.event.data).toEqual({ pässword: '[REDACTED]', pwd: '[REDACTED]', note: 'kept' });
  });
});
