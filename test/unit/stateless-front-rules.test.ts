// The pure rules of the stateless front (issue 16, item 3): which HTTP status a modern answer gets, what a
// subscriptions/listen filter is, what it lets through and how a delivered notification names its subscription.
import { describe, expect, it } from 'vitest';
import { decodeHeaderValue, httpStatusOf } from '../../src/gateway/era.ts';
import { filterAccepts, readListenFilter, tagged } from '../../src/gateway/listen-filter.ts';

describe('httpStatusOf', () => {
  it('answers a modern -32601 with 404 and -32021 with 400; everything else, and every 2025 answer, with 200', () => {
    expect(httpStatusOf('modern', { code: -32601 })).toBe(404);
    expect(httpStatusOf('modern', { code: -32021 })).toBe(400);
    expect(httpStatusOf('modern', { code: -32602 })).toBe(200);
    expect(httpStatusOf('modern', undefined)).toBe(200);
    expect(httpStatusOf('legacy', { code: -32601 })).toBe(200);
    expect(httpStatusOf('legacy', { code: -32021 })).toBe(200);
  });
});

describe('decodeHeaderValue', () => {
  it('decodes the base64 form of a header value (SEP-2243), passes others as they are, and refuses bad base64', () => {
    expect(decodeHeaderValue(`=?base64?${Buffer.from('café_tool').toString('base64')}?=`)).toBe('café_tool');
    expect(decodeHeaderValue('plain_tool')).toBe('plain_tool');
    expect(decodeHeaderValue('=?base64?not*base64?=')).toBeUndefined();
  });
});

describe('readListenFilter', () => {
  it('keeps what was opted into, drops false flags and an empty URI list, and removes duplicate URIs', () => {
    expect(readListenFilter({ notifications: { toolsListChanged: true, promptsListChanged: false, resourceSubscriptions: [] } })).toEqual({ toolsListChanged: true });
    expect(readListenFilter({ notifications: { resourceSubscriptions: ['a://x', 'a://x', 'a://y'] } })).toEqual({ resourceSubscriptions: ['a://x', 'a://y'] });
    expect(readListenFilter({ notifications: {} })).toEqual({});
  });

  it('refuses a missing or malformed filter', () => {
    for (const params of [undefined, {}, { notifications: null }, { notifications: [] }, { notifications: { toolsListChanged: 'yes' } }, { notifications: { resourceSubscriptions: [1] } }, { notifications: { resourceSubscriptions: 'a://x' } }]) {
      expect(readListenFilter(params as Record<string, unknown> | undefined)).toBeUndefined();
    }
  });
});

describe('filterAccepts', () => {
  const note = (method: string, params?: Record<string, unknown>) => ({ jsonrpc: '2.0' as const, method, ...(params ? { params } : {}) });

  it('lets through only the kinds of change asked for, and resources/updated only for the URIs asked for', () => {
    const filter = { toolsListChanged: true as const, resourceSubscriptions: ['a://x'] };
    expect(filterAccepts(filter, note('notifications/tools/list_changed'))).toBe(true);
    expect(filterAccepts(filter, note('notifications/prompts/list_changed'))).toBe(false);
    expect(filterAccepts(filter, note('notifications/resources/list_changed'))).toBe(false);
    expect(filterAccepts(filter, note('notifications/resources/updated', { uri: 'a://x' }))).toBe(true);
    expect(filterAccepts(filter, note('notifications/resources/updated', { uri: 'a://y' }))).toBe(false);
    // Logging and anything else never travel on a listen stream.
    expect(filterAccepts(filter, note('notifications/message', { level: 'error', data: 'x' }))).toBe(false);
  });

  it('tags a notification with the subscription id, keeping its params and _meta', () => {
    expect(tagged(note('notifications/resources/updated', { uri: 'a://x', _meta: { k: 1 } }), 7)).toEqual(
      note('notifications/resources/updated', { uri: 'a://x', _meta: { k: 1, 'io.modelcontextprotocol/subscriptionId': 7 } }),
    );
    expect(tagged(note('notifications/tools/list_changed'), 's')).toEqual(note('notifications/tools/list_changed', { _meta: { 'io.modelcontextprotocol/subscriptionId': 's' } }));
  });
});
