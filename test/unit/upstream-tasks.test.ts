import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { UpstreamTasks } from '../../src/gateway/upstream-tasks.ts';
import type { Upstream } from '../../src/ports.ts';

const key = randomBytes(32);
const asked: Array<{ method: string; params: Record<string, unknown> }> = [];
const upstream = { request: async (method: string, params: Record<string, unknown>) => (asked.push({ method, params }), { taskId: params.taskId, status: 'working' }) } as unknown as Upstream;
const tasks = new UpstreamTasks(async () => key, (server) => (server === 'up' ? upstream : undefined), () => 1_000);
const get = (caller: { tenant: string; principal: string }, taskId: string) => tasks.forward(caller, 'tasks/get', { taskId }, {}, new AbortController().signal);

describe('UpstreamTasks: task ids bound to their caller', () => {
  it('opens an id for the caller it was given to, and for no one whose tenant and principal join to the same text', async () => {
    const owner = { tenant: 'acme\nbob', principal: 'alice' };
    const { taskId } = (await tasks.created(owner, 'up', { taskId: 'upstream-1', status: 'working' })) as { taskId: string };
    expect(await get(owner, taskId)).toEqual({ result: { taskId, status: 'working' } });
    expect(asked.at(-1)).toEqual({ method: 'tasks/get', params: { taskId: 'upstream-1' } });
    for (const other of [{ tenant: 'acme', principal: 'bob\nalice' }, { tenant: 'acme', principal: 'alice' }, { tenant: 'acme\nbob', principal: 'alice2' }]) {
      expect(await get(other, taskId)).toMatchObject({ error: { code: -32602, data: { code: 'GH_ERR_TASK_UNKNOWN' } } });
    }
  });
});
