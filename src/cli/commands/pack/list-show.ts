import { loadYamlFile } from '../../../config/yaml-file.ts';
import { availablePacks, BUNDLED_PACKS } from '../../../packs/places.ts';
import { loadPack } from '../../../packs/pack.ts';
import { readInstalled } from '../../../packs/installed.ts';
import { parseArgs, usage } from '../../args.ts';
import { DEPLOYMENT_FLAGS, namedPack, packDeployment } from './deployment.ts';

export async function runList(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: DEPLOYMENT_FLAGS, booleans: ['json'] });
  if (args.positionals.length > 0) throw usage(`unexpected argument "${args.positionals[0]}"`);
  const deployment = packDeployment(args);
  const installs = [...deployment.configPacks.map((p) => ({ ...p, from: 'config' })), ...readInstalled(deployment.dataDir).map((p) => ({ ...p, from: 'data dir' }))];
  const packs = availablePacks(deployment.places).map(({ name, dir }) => {
    const pack = loadPack(dir);
    const installed = installs.filter((i) => i.name === name || i.name === dir).map((i) => ({ upstream: i.upstream ?? pack.manifest.upstream.name, from: i.from }));
    return { name, version: pack.manifest.version, description: pack.manifest.description, source: dir.startsWith(BUNDLED_PACKS) ? 'bundled' : 'added', dir, digest: pack.digest, installed };
  });
  if (args.flags.json) {
    console.log(JSON.stringify({ packs }, null, 2));
    return 0;
  }
  for (const p of packs) {
    const where = p.installed.map((i) => `${i.upstream} (${i.from})`).join(', ');
    console.log(`${p.name.padEnd(12)} ${p.version.padEnd(8)} ${p.source.padEnd(8)} ${where ? `installed for ${where}` : 'not installed'}`);
    console.log(`  ${p.description}`);
  }
  if (packs.length === 0) console.log('no packs');
  return 0;
}

export async function runShow(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: DEPLOYMENT_FLAGS, booleans: ['json'] });
  if (args.positionals.length > 1) throw usage('name one pack');
  const pack = namedPack(args.positionals[0], packDeployment(args).places);
  const { manifest } = pack;
  // The rules as written (parameters unfilled): what the pack adds, whatever an install sets.
  const rules = pack.policyFiles.flatMap((file) => {
    const value = loadYamlFile(file, 'GH_ERR_POLICY_INVALID').value as { rules?: Array<Record<string, unknown>> };
    return (value.rules ?? []).map((r) => ({ id: r.id, effect: r.effect, description: r.description, match: r.match ?? {}, ...(r.when ? { when: r.when } : {}) }));
  });
  const tools = Object.entries(pack.tools.tools).map(([name, t]) => ({ name, riskTags: t.riskTags, args: t.args, ...(t.annotations ? { annotations: t.annotations } : {}), ...(t.note ? { note: t.note } : {}) }));
  if (args.flags.json) {
    console.log(JSON.stringify({ ...manifest, dir: pack.dir, digest: pack.digest, server: pack.tools.server, tools, rules }, null, 2));
    return 0;
  }
  const lines = [`${manifest.name} ${manifest.version}  ${pack.digest}`, `  ${manifest.description}`];
  if (manifest.homepage) lines.push(`  ${manifest.homepage}`);
  lines.push('', `server: ${[pack.tools.server.package, pack.tools.server.version].filter(Boolean).join(' ')}; upstream "${manifest.upstream.name}": ${[manifest.upstream.command, ...manifest.upstream.args].join(' ')}`);
  if (manifest.upstream.env.length > 0) lines.push(`  needs the environment variables ${manifest.upstream.env.join(', ')}`);
  lines.push('', 'parameters:');
  for (const [name, spec] of Object.entries(manifest.params)) {
    const value = spec.required ? 'required' : `default ${JSON.stringify(spec.default)}`;
    lines.push(`  ${name} (${spec.type}${spec.oneOf ? `: ${spec.oneOf.join(' | ')}` : ''}; ${value})${spec.description ? `  ${spec.description}` : ''}`);
  }
  if (Object.keys(manifest.params).length === 0) lines.push('  (none)');
  lines.push('', 'tools:');
  for (const t of tools) {
    const roles = Object.entries(t.args).map(([role, names]) => `${role}: ${(names as string[]).join(', ')}`);
    lines.push(`  ${t.name.padEnd(28)} ${t.riskTags.join(', ')}${roles.length > 0 ? `  [${roles.join('; ')}]` : ''}${t.annotations ? `  annotations ${JSON.stringify(t.annotations)}` : ''}`);
    if (t.note) lines.push(`  ${''.padEnd(28)} ${t.note}`);
  }
  lines.push('', 'rules:');
  for (const r of rules) lines.push(`  ${String(r.id).padEnd(36)} ${String(r.effect).padEnd(24)} ${r.description ?? ''}`);
  console.log(lines.join('\n'));
  return 0;
}
