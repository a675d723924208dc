import type { Readable, Writable } from 'node:stream';

interface RpcReply {
  id?: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/** A minimal NDJSON MCP client over a child's pipes (legacy era, the way stdio hosts speak today). */
export class McpStdioClient {
  private nextId = 1;
  /** The bytes of the line being read, as they came: joined once, at its newline (a large result stays linear). */
  private partial: Buffer[] = [];
  private readonly pending = new Map<number, { resolve(reply: RpcReply): void; reject(err: Error): void }>();

  constructor(
    private readonly input: Writable,
    output: Readable,
  ) {
    output.on('data', (chunk: Buffer) => this.onData(chunk));
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
    await this.call(tool, '{"text":"hi"}');
  }

  /** One call of any tool; `args` is the arguments' JSON. Throws unless the tool answered without error. */
  async call(tool: string, args: string): Promise<Record<string, unknown>> {
    const reply = await this.request('tools/call', `{"name":"${tool}","arguments":${args}}`);
    if (!reply.result || reply.result.isError) throw new Error(`${tool} failed: ${JSON.stringify(reply.error ?? reply.result).slice(0, 300)}`);
    return reply.result;
  }

  private request(method: string, params: string): Promise<RpcReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.input.write(`{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${params}}\n`);
    });
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(10); end >= 0; end = chunk.indexOf(10, start)) {
      this.partial.push(chunk.subarray(start, end));
      const line = Buffer.concat(this.partial).toString('utf8');
      this.partial = [];
      start = end + 1;
      if (!line.trim()) continue;
      const reply = JSON.parse(line) as RpcReply;
      if (typeof reply.id !== 'number') continue; // notifications: not part of the measurement
      const pending = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      pending?.resolve(reply);
    }
    if (start < chunk.length) this.partial.push(chunk.subarray(start));
  }
}
