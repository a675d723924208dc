import { describe, expect, it } from 'vitest';
import { parseYamlText } from '../../src/config/yaml-file.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { problemsOf } from './config.test.ts';

const FILE = '/etc/gh/gatehouse.yaml';
const load = (text: string, env: NodeJS.ProcessEnv = {}) => resolveConfig(parseYamlText(FILE, text, 'GH_ERR_CONFIG_INVALID'), env, () => true);
const at = (line: number, ...path: (string | number)[]) => ({ file: FILE, line, path });

describe('config: audit.sinks', () => {
  it('fills each sink’s defaults and interpolates its headers', () => {
    const config = load('audit:\n  sinks:\n    - { name: siem, type: http, url: "https://siem.example/in", headers: { Authorization: "Bearer ${env:SIEM_TOKEN}" } }\n', { SIEM_TOKEN: 's3cret' });
    expect(config.audit.sinks).toEqual([
      { name: 'siem', type: 'http', url: 'https://siem.example/in', headers: { Authorization: 'Bearer s3cret' }, batchSize: 500, timeout: 10_000, pollInterval: 1_000, retry: { initial: 500, max: 30_000 } },
    ]);
    expect(load('dataDir: x\n').audit.sinks).toEqual([]);
  });

  it('refuses a bad sink at load, naming the line and key of every mistake', () => {
    const text = [
      'audit:',
      '  sinks:',
      '    - { name: siem, type: syslog, url: "https://siem.example/in" }',
      '    - { name: otel, type: otlp, url: "collector:4318" }',
      '    - { name: otel, type: otlp, url: "http://collector:4318", batchSize: 0 }',
      '    - { name: "no spaces", type: http, url: "http://x", retry: { initial: 1m, max: 1s } }',
      '    - { name: h, type: http, url: "http://x", headers: { Authorization: "Bearer ${env:UNSET_TOKEN}" }, colour: red }',
    ].join('\n');
    expect(problemsOf(() => load(text), 'GH_ERR_CONFIG_INVALID')).toEqual([
      at(3, 'audit', 'sinks', 0, 'type'),
      at(4, 'audit', 'sinks', 1, 'url'),
      at(5, 'audit', 'sinks', 2, 'batchSize'),
      at(6, 'audit', 'sinks', 3, 'name'),
      at(7, 'audit', 'sinks', 4, 'headers', 'Authorization'),
      at(7, 'audit', 'sinks', 4, 'colour'),
    ]);
  });

  it('refuses two sinks of one name, and a retry that starts longer than its cap', () => {
    const text = 'audit:\n  sinks:\n    - { name: a, type: http, url: "http://x" }\n    - { name: a, type: otlp, url: "http://y", retry: { initial: 1m, max: 1s } }\n';
    expect(problemsOf(() => load(text), 'GH_ERR_CONFIG_INVALID')).toEqual([at(4, 'audit', 'sinks', 1, 'name'), at(4, 'audit', 'sinks', 1, 'retry', 'initial')]);
  });
});
