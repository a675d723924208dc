import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getOSSpecificGuidance, getPathGuidance, getSystemInfo } from '@wonderwhy-er/desktop-commander/dist/utils/system-info.js';
import { digestOf } from '../../src/protocol/digest.ts';
import type { ToolDefinition } from '../../src/protocol/mcp.ts';
import { ROOT } from './gateway-harness.ts';

export const DESKTOP_COMMANDER = join(ROOT, 'node_modules', '@wonderwhy-er', 'desktop-commander', 'dist', 'index.js');

/**
 * What desktop-commander (the shell pack's server) needs to run in a test without reaching out: its config and
 * feature-flag cache in a fresh home (not the user's), telemetry off, its feature flags asked of a closed port on
 * loopback, no welcome page opened in a browser, and its own folder limit off (the pack's workspace is what is
 * tested). At start it looks for a Chrome to make PDFs with and finds Debian's Chromium, which `.ci/run` installs,
 * so it downloads none. Its own blocked-command list names rm, dd, mkfs, shred and
 * wipefs: the tests send such commands to show that Gatehouse refuses them before dispatch, and should a test ever
 * let one through, the server refuses it too (the tests check that the refusal is Gatehouse's).
 */
export function desktopCommanderEnv(): { args: string[]; env: Record<string, string>; home: string } {
  const home = mkdtempSync(join(tmpdir(), 'gh-desktop-commander-'));
  mkdirSync(join(home, '.claude-server-commander'));
  writeFileSync(join(home, '.claude-server-commander', 'config.json'), JSON.stringify({ blockedCommands: ['rm', 'dd', 'mkfs', 'shred', 'wipefs'], telemetryEnabled: false, allowedDirectories: [] }));
  return {
    args: [DESKTOP_COMMANDER, '--no-onboarding'],
    env: { HOME: home, DESKTOP_COMMANDER_DISABLE_TELEMETRY: '1', DC_FLAG_URL: 'http://127.0.0.1:9/flags.json' },
    home,
  };
}

/**
 * The digest a desktop-commander tool definition would have on Linux outside a container with bash as its shell.
 * The server writes the machine it runs on (OS, default shell, a container's mounted folders) into the
 * descriptions of its file tools and of start_process, so the same version lists other definitions on other
 * machines; the pack pins them as on that plain Linux machine, and this puts this machine's text back to it, with
 * the server's own functions, before digesting.
 */
export function neutralDigest(tool: ToolDefinition): string {
  return digestOf(neutralDefinition(tool));
}

/** The definition as on that plain Linux machine (what the poisoning corpus keeps, rather than this machine's). */
export function neutralDefinition<T extends { description?: string }>(tool: T): T {
  const here = getSystemInfo();
  const plain = { ...here, platformName: 'Linux', defaultShell: 'bash', isWindows: false, isMacOS: false, isLinux: true, docker: { ...here.docker, isContainer: false, mountPoints: [] } };
  let description = tool.description ?? '';
  for (const guidance of [getOSSpecificGuidance, getPathGuidance]) description = description.split(guidance(here)).join(guidance(plain));
  return { ...tool, description };
}
