import type { JsonRpcId, JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.ts';
import { GatewayError } from '../errors.ts';

/**
 * Requests Gatehouse sends to a client (elicitation, sampling, roots on behalf of an upstream), and the
 * matching of the client's answers, which may arrive on another HTTP request than the one that asked.
 */
export class ClientRequests {
  private nextId = 1;
  private readonly pending = new Map<JsonRpcId, { resolve(result: Record<string, unknown>): void; reject(err: Error): void }>();

  constructor(private readonly prefix: string) {}

  /** Sends a request via `send` and resolves with the client's result (or rejects with its error). */
  ask(send: (request: JsonRpcRequest) => void, method: string, params: Record<string, unknown> | undefined, signal: AbortSignal): Promise<Record<string, unknown>> {
    const id = `${this.prefix}-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.pending.delete(id);
        reject(new GatewayError('GH_ERR_CANCELLED', `${method} was cancelled`));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      send({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });
    });
  }

  /** Takes a response from the client. Returns false if nothing was waiting for it. */
  settle(response: JsonRpcResponse): boolean {
    const pending = response.id === null ? undefined : this.pending.get(response.id);
    if (!pending) return false;
    this.pending.delete(response.id!);
    if ('error' in response) {
      pending.reject(new GatewayError('GH_ERR_UPSTREAM_ERROR', response.error.message, { data: { rpcError: response.error } }));
    } else {
      pending.resolve(response.result);
    }
    return true;
  }

  failAll(reason: string): void {
    for (const p of this.pending.values()) p.reject(new GatewayError('GH_ERR_CANCELLED', reason));
    this.pending.clear();
  }
}
