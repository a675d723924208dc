import { isStdioUpstream } from '../../config/schema.ts';
import { fitInWords, packFits } from '../../packs/match.ts';
import type { Gateway } from '../../runtime/gateway.ts';
import { bundledPacks, launchedServer } from './pack/fitting.ts';

/**
 * For each upstream no pack governs, the bundled pack that fits it (by its command, or, once it ran, its serverInfo
 * name or tools), when exactly one does. `start` applies only the packs its config and data dir name, so that what
 * decides is written down (and, in distributed mode, the same on every replica); it says what would fit instead.
 */
export function packHints(gateway: Gateway): string[] {
  const governed = new Set((gateway.kernel.bundle.packs ?? []).map((p) => p.upstream));
  const packs = bundledPacks();
  const hints: string[] = [];
  for (const [name, upstream] of Object.entries(gateway.config.upstreams)) {
    if (governed.has(name)) continue;
    const launched = isStdioUpstream(upstream) ? launchedServer(upstream.command, upstream.args) : undefined;
    const running = gateway.initialisedServer(name);
    const fits = packs.flatMap((pack) => {
      const by = launched && packFits(pack, launched) ? 'its command' : running && fitInWords(pack, running);
      return by ? [{ pack, by }] : [];
    });
    if (fits.length !== 1) continue;
    const [{ pack, by }] = fits;
    hints.push(`upstream "${name}" fits the bundled ${pack.manifest.name} pack (by ${by}); to apply it: packs: [{ name: ${pack.manifest.name}, upstream: ${name} }] in the config, or gatehouse pack add ${pack.manifest.name} --upstream ${name}`);
  }
  return hints;
}
