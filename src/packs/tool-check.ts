import type { Pack } from './pack.ts';

/** How a server's real tool list (own name → pinned digest) differs from what a pack was written against. */
export interface ToolCheck {
  /** Listed by the server, not in tools.yaml: the pack says nothing of them (the deployment's rules still apply). */
  unknown: string[];
  /** In both, with another definition than the pack pinned: its facts may no longer be right. */
  changed: string[];
  /** In tools.yaml, not listed by the server (an older or newer server). */
  missing: string[];
}

export function checkTools(pack: Pack, listed: Readonly<Record<string, string>>): ToolCheck {
  const pinned = pack.tools.tools;
  const names = Object.keys(listed).sort();
  return {
    unknown: names.filter((name) => !(name in pinned)),
    changed: names.filter((name) => name in pinned && pinned[name].digest !== listed[name]),
    missing: Object.keys(pinned).filter((name) => !(name in listed)).sort(),
  };
}
