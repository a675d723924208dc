import { describe, expect, it } from 'vitest';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import { loadConfig, resolveConfig } from '../../src/config/load.ts';
import { parseDuration } from '../../src/config/duration.ts';
import { redactUrl } from '../../src/config/redact-url.ts';

const load = (text: string, env: NodeJS.ProcessEnv = {}) => resolveConfig(parseYamlText('/etc/gh/gatehouse.yaml', text, 'GH_ERR_CONFIG_INVALID'), env);

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
    expect(() => load(text)).toThrow(/gatehouse\.yaml:2: upstreams\.remote\.headers\.Authorization: environment variable TOKEN is not set/);
  });

  it('names the file, line, key and expectation for every mistake', () => {
    try {
      load('listen: { http: 8787 }\nupstreams:\n  bad: { comand: npx }\napprovals: { ttl: soon }\n');
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'GH_ERR_CONFIG_INVALID' });
      const message = (err as Error).message;
      expect(message).toContain('gatehouse.yaml:1: listen.http');
      expect(message).toContain('gatehouse.yaml:3: upstreams.bad: Unrecognized key: "comand"');
      expect(message).toContain('gatehouse.yaml:4: approvals.ttl: expected a duration');
    }
  });

  it('reports broken YAML with its line', () => {
    expect(() => load('listen: {\n  http: [\n')).toThrow(/gatehouse\.yaml:\d+: invalid YAML/);
  });

  it('distributed mode: needs nats, redis and a shared signing key; a pool needs distributed mode', () => {
    const problems = (text: string) => {
      try {
        load(text);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    const missing = problems('mode: distributed\n');
    expect(missing).toContain('nats: mode: distributed needs nats: { url }');
    expect(missing).toContain('redis: mode: distributed needs redis: { url }');
    expect(missing).toContain('approvals.signingKey: mode: distributed needs approvals.signingKey');
    expect(problems('nats: { url: "http://x" }\n')).toContain('expected a NATS URL');
    expect(problems('upstreams:\n  a: { command: x, pool: tools }\n')).toContain('gatehouse.yaml:2: upstreams.a.pool: a pool needs mode: distributed');
    const distributed = 'mode: distributed\nnats: { url: "nats://h:4222" }\nredis: { url: "redis://h:6379" }\napprovals: { signingKey: "' + 'k'.repeat(40) + '" }\n';
    expect(problems(distributed + 'upstreams:\n  a: { command: x, pool: b }\n  b: { command: y }\n')).toContain('upstreams.a.pool: pool "b" has the name of an upstream the replicas run themselves');
    const team = loadConfig('examples/team/gatehouse.yaml', { NATS_PASSWORD: 'n', REDIS_PASSWORD: 'r', GATEHOUSE_SIGNING_KEY: 'k'.repeat(40) }).config;
    expect(team).toMatchObject({ mode: 'distributed', nats: { jetstream: true }, upstreams: { notes: { pool: 'tools' } } });
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
