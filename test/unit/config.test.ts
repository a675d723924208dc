import { describe, expect, it } from 'vitest';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import { loadConfig, resolveConfig } from '../../src/config/load.ts';
import { parseDuration } from '../../src/config/duration.ts';
import { redactUrl } from '../../src/protocol/redact-url.ts';
import type { Problem } from '../../src/config/problems.ts';
import { isGatewayError, type ErrorCode } from '../../src/errors.ts';

const FILE = '/etc/gh/gatehouse.yaml';
/** Policy files named in these configs are taken as present, unless a test says otherwise. */
const load = (text: string, env: NodeJS.ProcessEnv = {}, exists: (path: string) => boolean = () => true) => resolveConfig(parseYamlText(FILE, text, 'GH_ERR_CONFIG_INVALID'), env, exists);

/** The code and the problems (file, line, key path) of what `fn` throws: what a caller may rely on, never the prose. */
export function problemsOf(fn: () => unknown, code: ErrorCode): Omit<Problem, 'message'>[] {
  try {
    fn();
  } catch (err) {
    expect(isGatewayError(err, code)).toBe(true);
    return ((err as { data: { problems: Problem[] } }).data.problems ?? []).map(({ file, line, path }) => ({ file, line, path }));
  }
  throw new Error('expected an error');
}

const at = (line: number | undefined, ...path: (string | number)[]) => ({ file: FILE, line, path });

describe('config', () => {
  it('fills defaults and resolves paths against the config file', () => {
    const config = load('upstreams:\n  files: { command: npx, args: [a] }\npolicies: [p.yaml]\n');
    expect(config.listen).toMatchObject({ http: '127.0.0.1:8787', stdio: false });
    expect(config.dataDir).toBe('/etc/gh/.gatehouse');
    expect(config.policies).toEqual(['/etc/gh/p.yaml']);
    expect(config.upstreams.files).toMatchObject({ command: 'npx', args: ['a'], cwd: '/etc/gh', timeout: 60_000 });
    expect(config.approvals).toMatchObject({ ttl: 900_000, holdBudget: 45_000 });
  });

  it('interpolates ${env:NAME} and names the key when a variable is missing', () => {
    const text = 'upstreams:\n  remote: { url: "http://127.0.0.1:9/mcp", headers: { Authorization: "Bearer ${env:TOKEN}" } }\n';
    expect(load(text, { TOKEN: 's3cret' }).upstreams.remote).toMatchObject({ headers: { Authorization: 'Bearer s3cret' } });
    expect(problemsOf(() => load(text), 'GH_ERR_CONFIG_INVALID')).toEqual([at(2, 'upstreams', 'remote', 'headers', 'Authorization')]);
  });

  it('names the file, line and key of every mistake', () => {
    const text = 'listen: { http: 8787 }\nupstreams:\n  bad: { comand: npx }\napprovals: { ttl: soon }\n';
    expect(problemsOf(() => load(text), 'GH_ERR_CONFIG_INVALID')).toEqual([at(1, 'listen', 'http'), at(3, 'upstreams', 'bad'), at(3, 'upstreams', 'bad', 'comand'), at(4, 'approvals', 'ttl')]);
  });

  it('reports broken YAML with its line', () => {
    const broken = problemsOf(() => load('listen: {\n  http: [\n'), 'GH_ERR_CONFIG_INVALID');
    expect(broken.length).toBeGreaterThan(0);
    for (const problem of broken) expect(problem).toEqual({ file: FILE, line: expect.any(Number), path: [] });
    // Every syntax mistake, not the first only: a key written twice is one too.
    expect(problemsOf(() => load('dataDir: a\ndataDir: b\nlisten: { http: "x:1" }\nlisten: {}\n'), 'GH_ERR_CONFIG_INVALID').map((p) => p.line)).toEqual([2, 4]);
  });

  it('distributed mode: needs nats, redis and a shared signing key; a pool needs distributed mode', () => {
    const invalid = (text: string) => problemsOf(() => load(text), 'GH_ERR_CONFIG_INVALID');
    expect(invalid('mode: distributed\n')).toEqual([at(undefined, 'nats'), at(undefined, 'redis'), at(undefined, 'approvals', 'signingKey')].map((p) => ({ ...p, line: expect.anything() })));
    expect(invalid('nats: { url: "http://x" }\n')).toEqual([at(1, 'nats', 'url')]);
    expect(invalid('upstreams:\n  a: { command: x, pool: tools }\n')).toEqual([at(2, 'upstreams', 'a', 'pool')]);
    const distributed = 'mode: distributed\nnats: { url: "nats://h:4222" }\nredis: { url: "redis://h:6379" }\napprovals: { signingKey: "' + 'k'.repeat(40) + '" }\n';
    expect(invalid(distributed + 'upstreams:\n  a: { command: x, pool: b }\n  b: { command: y }\n')).toEqual([at(6, 'upstreams', 'a', 'pool')]);
    const team = loadConfig('examples/team/gatehouse.yaml', { NATS_PASSWORD: 'n', REDIS_PASSWORD: 'r', GATEHOUSE_SIGNING_KEY: 'k'.repeat(40) }).config;
    expect(team).toMatchObject({ mode: 'distributed', nats: { jetstream: true }, upstreams: { notes: { pool: 'tools' } } });
  });

  it('approvals.webhook: format plain or slack, links on, acting as webhook, unless set; anything else refused at its key', () => {
    const invalid = (text: string) => problemsOf(() => load(text), 'GH_ERR_CONFIG_INVALID');
    expect(load('approvals: { webhook: { url: "https://hooks.example.com/x" } }\n').approvals.webhook).toEqual({ url: 'https://hooks.example.com/x', headers: {}, format: 'plain', links: true, actAs: 'webhook' });
    expect(load('approvals: { webhook: { url: "https://h.example/x", format: slack, links: false, actAs: chatops } }\n').approvals.webhook).toMatchObject({ format: 'slack', links: false, actAs: 'chatops' });
    expect(invalid('approvals: { webhook: { url: "https://h.example/x", format: teams } }\n')).toEqual([at(1, 'approvals', 'webhook', 'format')]);
    expect(invalid('approvals: { webhook: { url: "https://h.example/x", actAs: "" } }\n')).toEqual([at(1, 'approvals', 'webhook', 'actAs')]);
    expect(invalid('approvals: { webhook: { url: "https://h.example/x", links: maybe } }\n')).toEqual([at(1, 'approvals', 'webhook', 'links')]);
  });

  it('audit: a checkpoint key must be an Ed25519 key or seed, and checkpoints come at most every 2 records', () => {
    const invalid = (text: string) => problemsOf(() => load(text), 'GH_ERR_CONFIG_INVALID');
    expect(invalid('audit: { signingKey: "not a key" }\n')).toEqual([at(1, 'audit', 'signingKey')]);
    expect(invalid('audit: { checkpointEvery: 1 }\n')).toEqual([at(1, 'audit', 'checkpointEvery')]);
    const seed = Buffer.alloc(32, 7).toString('base64');
    expect(load(`audit: { signingKey: "${seed}" }\n`).audit).toMatchObject({ signingKey: seed, checkpointEvery: 1000 });
  });

  describe('every mistake at once, each at its line', () => {
    const invalid = (text: string, env: NodeJS.ProcessEnv = {}, exists?: (path: string) => boolean) => problemsOf(() => load(text, env, exists), 'GH_ERR_CONFIG_INVALID');

    it('a bad URL under a bad upstream name: both', () => {
      expect(invalid('upstreams:\n  "my files": { url: "ftp://x/mcp" }\n')).toEqual([at(2, 'upstreams', 'my files', 'url'), at(2, 'upstreams', 'my files')]);
    });

    it('every unset ${env:…}, not the first only, and no false problem from the value left empty', () => {
      const text = 'upstreams:\n  remote: { url: "${env:REMOTE_URL}", headers: { Authorization: "Bearer ${env:TOKEN}" } }\nauth: { apiKeys: [{ key: "${env:GH_KEY}", principal: a }] }\n';
      expect(invalid(text)).toEqual([at(2, 'upstreams', 'remote', 'url'), at(2, 'upstreams', 'remote', 'headers', 'Authorization'), at(3, 'auth', 'apiKeys', 0, 'key')]);
    });

    it('an upstream with both command and url, or neither, is one problem in words, beside its other mistakes', () => {
      const text = 'upstreams:\n  both: { command: x, url: "http://a/mcp", timeout: soon }\n  neither: { args: [x] }\n  stray:\n    command: x\n    headers: {}\n';
      expect(invalid(text)).toEqual([at(2, 'upstreams', 'both'), at(2, 'upstreams', 'both', 'timeout'), at(3, 'upstreams', 'neither'), at(6, 'upstreams', 'stray', 'headers')]);
      const messages = (() => {
        try {
          load(text);
        } catch (err) {
          return (err as { data: { problems: Problem[] } }).data.problems.map((p) => p.message);
        }
        return [];
      })();
      // No validator's own text reaches the person.
      for (const message of messages) expect(message).not.toMatch(/Unrecognized key|Invalid key in record|Invalid input/);
    });

    it('a policy file that is not there, at the line that names it', () => {
      const text = 'policies:\n  - policies/default.yaml\n  - policies/missing.yaml\nlisten: { http: "h" }\n';
      expect(invalid(text, {}, (path) => path === '/etc/gh/policies/default.yaml')).toEqual([at(3, 'policies', 1), at(4, 'listen', 'http')]);
    });

    it('an unknown key at its own line', () => {
      expect(invalid('kernal:\n  watchPolicies: false\napprovals:\n  ttl: 1m\n  tll: 2m\n')).toEqual([at(1, 'kernal'), at(5, 'approvals', 'tll')]);
    });

    it('the state commands read the data dir and the Redis URL the same way', async () => {
      const { mkdtempSync, writeFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const { tmpdir } = await import('node:os');
      const { loadStateConfig } = await import('../../src/config/load.ts');
      const file = join(mkdtempSync(join(tmpdir(), 'gh-cfg-')), 'gatehouse.yaml');
      writeFileSync(file, 'mode: distributed\nredis: { url: "${env:REDIS_URL}" }\napprovals: { ttl: soon }\n');
      expect(problemsOf(() => loadStateConfig(file, {}), 'GH_ERR_CONFIG_INVALID')).toEqual([
        { file, line: 2, path: ['redis', 'url'] },
        { file, line: 3, path: ['approvals', 'ttl'] },
      ]);
    });
  });

  it('redacts the credentials of a service URL, even a password holding @ or /', () => {
    expect(redactUrl('nats://u:p@ss@h:4222')).toBe('nats://***@h:4222');
    expect(redactUrl('redis://:a/b@c@127.0.0.1:6379/0')).toBe('redis://***@127.0.0.1:6379/0');
    expect(redactUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
  });

  it('parses durations', () => {
    expect([parseDuration('500ms'), parseDuration('30s'), parseDuration('15m'), parseDuration('1h'), parseDuration('1.5s'), parseDuration('x')]).toEqual([500, 30_000, 900_000, 3_600_000, 1_500, undefined]);
  });
});

describe('config: telemetry', () => {
  it('is off by default, and takes an OTLP/HTTP endpoint with headers (from the environment too)', () => {
    expect(load('policies: [p.yaml]\n').telemetry.otlp).toBeUndefined();
    const config = load('policies: [p.yaml]\ntelemetry: { otlp: { endpoint: "http://127.0.0.1:4318", headers: { x-api-key: "${env:KEY}" } } }\n', { KEY: 'secret' });
    expect(config.telemetry.otlp).toEqual({ endpoint: 'http://127.0.0.1:4318', headers: { 'x-api-key': 'secret' } });
  });

  it('refuses an endpoint that is not an http(s) URL, and an unknown key, at load', () => {
    expect(problemsOf(() => load('policies: [p.yaml]\ntelemetry:\n  otlp: { endpoint: "grpc://collector:4317" }\n'), 'GH_ERR_CONFIG_INVALID')).toEqual([at(3, 'telemetry', 'otlp', 'endpoint')]);
    expect(problemsOf(() => load('policies: [p.yaml]\ntelemetry:\n  otlp: { url: "http://collector:4318" }\n'), 'GH_ERR_CONFIG_INVALID').map((p) => p.path.join('.')).sort()).toEqual(['telemetry.otlp.endpoint', 'telemetry.otlp.url']);
  });
});

describe('config: auth.oauth', () => {
  const oauth = (fields: string) => `auth:\n  oauth: { ${fields} }\n`;
  const base = 'audience: "https://gh.example.com/mcp"';

  it('fills the defaults: asymmetric algorithms only, sub as principal, 30 s of leeway; the client secret from the environment', () => {
    const config = load(oauth(`issuer: "https://as.example.com", ${base}, introspection: { endpoint: "https://as.example.com/introspect", clientId: gh, clientSecret: "\${env:GH_OAUTH_SECRET}" }`), { GH_OAUTH_SECRET: 's3cret' });
    expect(config.auth?.oauth).toMatchObject({
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      requiredScopes: [],
      clockTolerance: 30_000,
      jwksCooldown: 30_000,
      claims: { principal: 'sub' },
      introspection: { clientSecret: 's3cret' },
    });
  });

  it('refuses HS256 and none, naming the field, and a missing issuer', () => {
    const invalid = (text: string) => problemsOf(() => load(text), 'GH_ERR_CONFIG_INVALID');
    expect(invalid(oauth(`issuer: "https://as.example.com", ${base}, algorithms: [RS256, HS256]`))).toEqual([at(2, 'auth', 'oauth', 'algorithms', 1)]);
    expect(invalid(oauth(`issuer: "https://as.example.com", ${base}, algorithms: [none]`))).toEqual([at(2, 'auth', 'oauth', 'algorithms', 0)]);
    expect(invalid(oauth(base))).toEqual([at(2, 'auth', 'oauth', 'issuer')]);
  });
});
