import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectHttp, ROOT } from '../helpers/gateway-harness.ts';
import { startProcess, writeStartConfig } from '../helpers/start-process.ts';

describe('gatehouse start', () => {
  it('serves the demo over HTTP and prints how to connect', async () => {
    const { dir, config } = writeStartConfig({ upstream: 'notes', script: join(ROOT, 'examples/demo/server.ts') });
    const started = await startProcess(config, dir);
    try {
      const { url } = started;
      const out = started.output();
      expect(out).toContain('claude mcp add --transport http gatehouse');
      expect(out).toContain('@modelcontextprotocol/inspector');
      expect(out).toContain('claude_desktop_config.json');
      const client = await connectHttp(url);
      const names = (await client.listTools()).tools.map((t) => t.name).sort();
      expect(names).toEqual(['gatehouse_approval_status', 'gatehouse_approval_wait', 'notes__read_note', 'notes__slow_count', 'notes__write_note']);
      const read = await client.callTool({ name: 'notes__read_note', arguments: { name: 'welcome' } });
      expect(JSON.stringify(read.content)).toContain('Hello from the Gatehouse demo');
      const write = await client.callTool({ name: 'notes__write_note', arguments: { name: 'x', body: 'y' } });
      expect(JSON.stringify(write.content)).toContain('GH_ERR_APPROVAL_PENDING');
      // The hint names the CLI as it runs from here (the clone's script, not a `gatehouse` the PATH lacks); the config
      // is the ./gatehouse.yaml it finds by itself, so no --data-dir.
      expect(JSON.stringify(write.content)).toMatch(/bin\/gatehouse\.js approvals approve apr_[0-9A-Z]+`/);
      await client.close();
    } finally {
      await started.stop();
    }
  });
});
