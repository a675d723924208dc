import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { DEFAULT_POLICY, type Harness } from './gateway-harness.ts';

/** The default policy and a file that denies the fixture's `crash` to everyone, so one tool is listed for nobody. */
export function pagesPolicies(): string[] {
  const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-console-')), 'no-crash.yaml');
  writeFileSync(file, 'version: 2\nrules:\n  - id: no-crash\n    match: { tools: ["fx__crash"] }\n    effect: deny\n    reason: it kills its server\n');
  return [DEFAULT_POLICY, file];
}

/** A draft that denies the fixture's echo, which the default policy allows (read-only-tools). */
export const DENY_ECHO_DRAFT = `version: 2
default: deny
rules:
  - id: no-echo
    match: { tools: ["fx__echo"] }
    effect: deny
    reason: echo is off in this draft
  - id: read-only-tools
    match: { annotations: { readOnlyHint: true } }
    effect: allow
`;

/** The CSRF token of the form that posts to `action` on a page. */
export function formToken(html: string, action: string): string {
  const form = new RegExp(`<form method="post" action="(?:\\./|\\.\\./)${action}"><input type="hidden" name="csrf" value="([^"]+)">`).exec(html);
  if (!form) throw new Error(`no form posting to ${action} on the page`);
  return form[1];
}

/**
 * A known mix of calls: three the policy allows (echo), one it denies (crash, under pagesPolicies); resolves once
 * their records are written (a denial answers before its records are).
 */
export async function knownMix(client: Client, h: Harness): Promise<void> {
  for (const text of ['a', 'b', 'c']) await client.callTool({ name: 'fx__echo', arguments: { text } });
  await client.callTool({ name: 'fx__crash', arguments: {} });
  await h.gateway.audit.written('default');
}
