import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, startHarness, waitFor, type Harness } from '../helpers/gateway-harness.ts';
import type { AuditRecord } from '../../src/protocol/audit-record.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function auditTypes(jobId: string): Promise<string[]> {
  await h.gateway.audit.flush();
  const { FileAuditStore } = await import('../../adapters/file/audit-store.ts');
  const out: string[] = [];
  for await (const r of new FileAuditStore(h.dataDir).read('default') as AsyncIterable<AuditRecord>) if (r.jobId === jobId) out.push(r.type);
  return out;
}

describe('progress, cancellation and upstream failure', () => {
  it('forwards the upstream progress notifications to the client', async () => {
    const client = await connectHttp(h.url);
    const seen: number[] = [];
    const result = await client.callTool({ name: 'fx__slow', arguments: { steps: 3, delayMs: 20 } }, { onprogress: (p: { progress: number }) => seen.push(p.progress) } as never);
    expect((result.content as { text: string }[])[0].text).toBe('done after 3 steps');
    expect(seen).toEqual([1, 2, 3]);
    await client.close();
  });

  it('carries a client cancellation through to the upstream call', async () => {
    const client = await connectHttp(h.url);
    const controller = new AbortController();
    let progressed = false;
    const call = client.callTool({ name: 'fx__slow', arguments: { steps: 100, delayMs: 50 } }, { signal: controller.signal, onprogress: () => (progressed = true) } as never);
    await waitFor(() => progressed, 'the call to be running upstream');
    controller.abort('user abort');
    await expect(call).rejects.toBeDefined();
    let jobId = '';
    await waitFor(async () => {
      await h.gateway.audit.flush();
      const { FileAuditStore } = await import('../../adapters/file/audit-store.ts');
      for await (const r of new FileAuditStore(h.dataDir).read('default') as AsyncIterable<AuditRecord>) if (r.type === 'job.cancelled') jobId = r.jobId!;
      return jobId !== '';
    }, 'the job to be recorded as cancelled');
    expect(await auditTypes(jobId)).toEqual(expect.arrayContaining(['job.submitted', 'job.dispatched', 'job.cancelled']));
    await client.close();
  });

  it('fails a call in flight when the upstream crashes, restarts it, and serves again', async () => {
    const client = await connectHttp(h.url);
    const crashed = await client.callTool({ name: 'fx__crash', arguments: {} });
    expect(crashed.isError).toBe(true);
    expect((crashed.content as { text: string }[])[0].text).toContain('GH_ERR_UPSTREAM_UNAVAILABLE');
    await waitFor(() => h.gateway.directory.get('fx')?.state === 'ready', 'the upstream to restart');
    const again = await client.callTool({ name: 'fx__echo', arguments: { text: 'back' } });
    expect((again.content as { text: string }[])[0].text).toBe('echo: back');
    await client.close();
  });

  it('survives an upstream that stops reading its stdin, and restarts it', async () => {
    const client = await connectHttp(h.url);
    await client.callTool({ name: 'fx__deaf', arguments: {} });
    const failed = await client.callTool({ name: 'fx__echo', arguments: { text: 'anyone?' } });
    expect(failed.isError).toBe(true);
    expect((failed.content as { text: string }[])[0].text).toContain('GH_ERR_UPSTREAM_UNAVAILABLE');
    await waitFor(async () => {
      const r = await client.callTool({ name: 'fx__echo', arguments: { text: 'back' } });
      return !r.isError;
    }, 'the upstream to be restarted');
    await client.close();
  });

  it('enforces maxOutputBytes at the executor with a readable marker', async () => {
    const client = await connectHttp(h.url);
    // fx__big is read-only, so the default policy allows it without constraints: ask for more than 1 MiB anyway
    // through a policy that bounds it.
    const { Kernel } = await import('../../src/kernel/kernel.ts');
    const { mergePolicySources, parsePolicy } = await import('../../src/kernel/bundle.ts');
    const { parseYamlText } = await import('../../src/config/yaml-file.ts');
    const bounded = mergePolicySources([parsePolicy(parseYamlText('p.yaml', 'version: 1\ndefault: allow\nrules:\n  - { id: cap, effect: allow_with_constraints, constraints: { maxOutputBytes: 2000 } }\n', 'GH_ERR_POLICY_INVALID'))]);
    const before = h.gateway.kernel.bundle;
    h.gateway.kernel.replace(bounded);
    try {
      const result = await client.callTool({ name: 'fx__big', arguments: { bytes: 50_000 } });
      const text = (result.content as { text: string }[])[0].text;
      expect(text).toContain('output truncated by policy at 2000 bytes');
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2000); // the kept text and the marker, within the limit
      expect((result._meta as Record<string, any>)['gatehouse/job'].truncated).toBe(true);
    } finally {
      h.gateway.kernel.replace(before);
    }
    await client.close();
  });

  it('denies with the reason the model can read, and hides what it would deny from the list', async () => {
    const { mergePolicySources, parsePolicy } = await import('../../src/kernel/bundle.ts');
    const { parseYamlText } = await import('../../src/config/yaml-file.ts');
    const before = h.gateway.kernel.bundle;
    h.gateway.kernel.replace(
      mergePolicySources([parsePolicy(parseYamlText('p.yaml', 'version: 1\ndefault: allow\nrules:\n  - { id: no-big, match: { tools: ["fx__big"] }, effect: deny, reason: big outputs are banned }\n', 'GH_ERR_POLICY_INVALID'))]),
    );
    try {
      const client = await connectHttp(h.url);
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).not.toContain('fx__big');
      expect(names).toContain('fx__echo');
      const denied = await client.callTool({ name: 'fx__big', arguments: { bytes: 1 } });
      expect(denied.isError).toBe(true);
      expect((denied.content as { text: string }[])[0].text).toContain('Denied by policy: big outputs are banned');
      expect((denied._meta as Record<string, any>)['gatehouse/job']).toMatchObject({ decision: 'deny', ruleIds: ['no-big'] });
      // Parity: every listed tool is callable (not denied), every unlisted one is denied.
      for (const entry of h.gateway.catalog.entries()) {
        const listed = names.includes(entry.name);
        const decision = h.gateway.kernel.decide({ tenant: 'default', principal: 'tester', server: entry.server, tool: entry.name, annotations: entry.tool.annotations, args: {} });
        expect(listed).toBe(decision.effect !== 'deny');
      }
      await client.close();
    } finally {
      h.gateway.kernel.replace(before);
    }
  });
});
