// The 2026-07-28 conformance gate (issue 16, item 5), as run.ts applies it: the direct round passes every scored
// scenario; through Gatehouse, every scored scenario that passes alone passes too, except what waits for the
// upstream era (AWAITING_UPSTREAM_ERA, and the checks in AWAITING_UPSTREAM_ERA_CHECKS).
import { describe, expect, it } from 'vitest';
import { AWAITING_UPSTREAM_ERA, extensionScenarios, judgeExtensions, judgeModern, modernRequirements } from '../conformance/modern-requirements.ts';
import type { ScenarioResult } from '../conformance/suite-cli.ts';

const result = (scenario: string, failing: string[] = []): ScenarioResult => ({
  scenario,
  checks: [{ id: 'ok', name: 'ok', description: '', status: 'SUCCESS' }, ...failing.map((id) => ({ id, name: id, description: '', status: 'FAILURE' as const }))],
});
const round = (name: string, results: ScenarioResult[]) => ({ round: name, direct: name === 'direct', results: new Map(results.map((r) => [r.scenario, r])) });

describe('judgeModern', () => {
  it('reads the scored scenarios from the pinned requirement file, the MRTR and stateless ones among them', () => {
    const { scored, notScored } = modernRequirements();
    expect(scored).toContain('server-stateless');
    for (const s of AWAITING_UPSTREAM_ERA) expect(scored).toContain(s);
    expect(notScored.get('tasks-lifecycle')).toBe('extension');
  });

  it('fails a scenario that passes alone but not through Gatehouse, and one the direct round fails', () => {
    const direct = round('direct', [result('a'), result('b', ['x'])]);
    const through = round('gatehouse-http', [result('a', ['y']), result('b', ['x'])]);
    const { failures, notes } = judgeModern(['a', 'b'], [direct, through]);
    expect(failures).toEqual(['direct 2026-07-28: b: failing check(s)', 'gatehouse-http 2026-07-28: a: failing check(s)']);
    expect(notes.get('b')).toMatch(/fails alone/);
  });

  it('reports, without failing, what awaits the upstream era; any other failing check of such a scenario still fails', () => {
    const [mrtr, stateless, awaited] = ['input-required-result-non-tool-request', 'server-stateless', ['sep-2575-missing-capability-http-400']];
    const lists = { scenarios: [mrtr], checks: { [stateless]: awaited } };
    const direct = round('direct', [result(mrtr), result(stateless)]);
    const waiting = judgeModern([mrtr, stateless], [direct, round('gatehouse-stdio', [result(mrtr, ['m']), result(stateless, [...awaited])])], lists);
    expect(waiting.failures).toEqual([]);
    expect(waiting.notes.get(mrtr)).toMatch(/AWAITING_UPSTREAM_ERA/);
    const broken = judgeModern([stateless], [direct, round('gatehouse-stdio', [result(stateless, [...awaited, 'sep-2575-server-sends-subscription-ack'])])], lists);
    expect(broken.failures).toEqual([`gatehouse-stdio 2026-07-28: ${stateless}: failing check(s)`]);
  });

  it('fails a scored scenario that did not run', () => {
    expect(judgeModern(['a'], [round('direct', [])]).failures).toEqual(['direct 2026-07-28: a: not run']);
  });

  it("gates the tasks extension's unscored scenarios through Gatehouse on what passes alone, never the direct round", () => {
    const tasks = extensionScenarios(modernRequirements().notScored);
    expect(tasks).toContain('tasks-lifecycle');
    expect(tasks).not.toContain('json-schema-2020-12');
    const direct = round('direct', [result('tasks-lifecycle'), result('tasks-wire-fields', ['x'])]);
    const through = round('gatehouse-http', [result('tasks-lifecycle', ['y']), result('tasks-wire-fields', ['x'])]);
    const { failures, notes } = judgeExtensions(['tasks-lifecycle', 'tasks-wire-fields'], [direct, through]);
    expect(failures).toEqual(['gatehouse-http 2026-07-28: tasks-lifecycle: failing check(s)']);
    expect(notes.get('tasks-wire-fields')).toMatch(/fails alone/);
  });
});
