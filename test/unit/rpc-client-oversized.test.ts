// An upstream message too large to read (issue 10, item 13): the call it answers fails with
// GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE at once; when its id cannot be read, every call in flight does; a server
// request is answered with an error.
import { describe, expect, it } from 'vitest';
import { RpcClient } from '../../adapters/mcp/rpc-client.ts';
import { GatewayError } from '../../src/errors.ts';
import type { JsonRpcMessage } from '../../src/protocol/jsonrpc.ts';

function client() {
  const sent: JsonRpcMessage[] = [];
  const rpc = new RpcClient('up', (message) => void sent.push(message), () => ({}));
  const settled = (p: Promise<unknown>) => p.then(() => 'answered', (err: GatewayError) => err.code);
  return { rpc, sent, settled };
}
const tooLarge = new GatewayError('GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE', 'too large');

describe('RpcClient and oversized messages', () => {
  it('fails the call the message answers, and only that one', async () => {
    const { rpc, settled } = client();
    const first = settled(rpc.request('tools/call', {}));
    const second = settled(rpc.request('tools/call', {}));
    rpc.tooLarge({ hasMethod: false, id: 2 }, tooLarge);
    rpc.receive({ jsonrpc: '2.0', id: 1, result: {} });
    expect(await first).toBe('answered');
    expect(await second).toBe('GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE');
  });

  it('fails every call in flight when the id cannot be read', async () => {
    const { rpc, settled } = client();
    const calls = [settled(rpc.request('tools/call', {})), settled(rpc.request('resources/read', {}))];
    rpc.tooLarge({ hasMethod: false, id: undefined }, tooLarge);
    expect(await Promise.all(calls)).toEqual(['GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE', 'GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE']);
  });

  it('answers an oversized server request with an error, and fails no call', async () => {
    const { rpc, sent, settled } = client();
    const call = settled(rpc.request('tools/call', {}));
    rpc.tooLarge({ hasMethod: true, id: 'srv-1' }, tooLarge);
    rpc.receive({ jsonrpc: '2.0', id: 1, result: {} });
    expect(await call).toBe('answered');
    expect(sent).toContainEqual(expect.objectContaining({ id: 'srv-1', error: expect.objectContaining({ data: { code: 'GH_ERR_UPSTREAM_MESSAGE_TOO_LARGE' } }) }));
  });
});
