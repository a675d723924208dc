import type { Readable, Writable } from 'node:stream';

interface RpcReply {
  id?: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/** A minimal NDJSON MCP client over a child's pipes (legacy era, the way stdio hosts speak today). */
export class McpStdioClient {
  private nextId = 1;
  private partial = '';
  private readonly pending = new Map<number, { resolve(reply: RpcReply): void; reject(err: Error): void }>();

  constructor(
    private readonly input: Writable,
    output: Readable,
  ) {
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => this.onData(chunk));
    // A server that dies mid-run must fail the benchmark, not hang it.
    output.once('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('the stdio server closed its output'));
      this.pending.clear();
    });
  }

  async connect(): Promise<void> {
    const reply = await this.request('initialize', `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"gatehouse-bench","version":"1.0.0"}}`);
    if (!reply.result) throw new Error(`initialize failed: ${reply.error?.message}`);
    this.input.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
  }

  async listTools(): Promise<string[]> {
    const reply = await this.request('tools/list', '{}');
    if (!reply.result) throw new Error(`tools/list failed: ${reply.error?.message}`);
    return (reply.result.tools as { name: string }[]).map((t) => t.name);
  }

  async echo(tool: string): Promise<void> {
    const reply = await this.request('tools/call', `{"name":"${tool}","arguments":{"text":"hi"}}`);
    if (!reply.result || reply.result.isError) throw new Error(`${tool} failed: ${JSON.stringify(reply.error ?? reply.result).slice(0, 300)}`);
  }

  private request(method: string, params: string): Promise<RpcReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.input.write(`{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${params}}\n`);
    });
  }

  private onData(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      const reply = JSON.parse(line) as RpcReply;
      if (typeof reply.id !== 'number') continue; // notifications: not part of the measurement
      const pending = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      pending?.resolve(reply);
    }
  }
}
