import { afterEach, describe, expect, it } from 'vitest';
import { connectHttp, startHarness, type Harness } from '../helpers/gateway-harness.ts';
import type { AuditEvent } from '../../src/protocol/audit-record.ts';

/**
 * The audit trail hashes each record's JCS form; an object whose keys are already in JCS order is written as it is,
 * one out of order is sorted and copied (jcs.ts). The records every call makes are built in that order, which saves
 * that copy on every call: this holds them to it, so a key added out of order shows here rather than as CPU.
 */
const outOfOrder = (value: unknown, path: string): string[] => {
  if (value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) return value.flatMap((item, i) => outOfOrder(item, `${path}[${i}]`));
  const keys = Object.keys(value);
  const sorted = [...keys].sort();
  const here = keys.join() === sorted.join() ? [] : [`${path}: ${keys.join(', ')}`];
  return [...here, ...keys.flatMap((key) => outOfOrder((value as Record<string, unknown>)[key], `${path}.${key}`))];
};

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('the records of a governed call', () => {
  it('are built with their keys in JCS order (submitted, decided with its input, dispatched, succeeded)', async () => {
    harness = await startHarness();
    const events: AuditEvent[] = [];
    const record = harness.gateway.audit.record.bind(harness.gateway.audit);
    harness.gateway.audit.record = (event) => (events.push(event), record(event));
    const client = await connectHttp(harness.url);
    await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    await client.close();
    const types = events.filter((e) => e.jobId !== undefined).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['job.submitted', 'job.decided', 'job.succeeded']));
    expect(events.filter((e) => e.jobId !== undefined).flatMap((e) => outOfOrder(e.data, e.type))).toEqual([]);
  });
});
