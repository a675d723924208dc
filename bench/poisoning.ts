/**
 * The poisoning scan of tool definitions (src/call/definition-scan.ts) against its labelled corpus
 * (test/fixtures/tool-definitions: the real definitions of the dev-dependency servers and our fixtures, and the
 * poisoned and tricky benign variants): precision, recall, per-kind counts, and what a scan costs per definition,
 * against the digest every listed definition gets anyway (sha256 over JCS, the pins' baseline), in the same
 * process. Cold: the scan's cache is not in play (the gateway scans a digest once). Env: BENCH_POISONING_ROUNDS (7).
 */
import { scanDefinition } from '../src/call/definition-scan.ts';
import { digestOf } from '../src/protocol/digest.ts';
import { loadCorpus, scanCorpus, score } from '../test/fixtures/tool-definitions/corpus.ts';
import { median } from './stats.ts';

export function printPoisoningBench(): void {
  const rounds = Number(process.env.BENCH_POISONING_ROUNDS ?? 7);
  const all = scanCorpus();
  const scored = all.filter((s) => !s.entry.heldOut);
  const result = score(scored);
  const heldOut = score(all.filter((s) => s.entry.heldOut));
  const realCount = scored.filter((s) => s.entry.note === 'real').length;
  console.log(`\nThe poisoning scan against its labelled corpus: ${result.definitions} definitions, ${result.benign} benign (${realCount} real), ${result.poisoned} poisoned`);
  console.log(`precision ${result.precision.toFixed(3)}  recall ${result.recall.toFixed(3)}  (flagged ${result.truePositives + result.falsePositives.length}, false positives ${result.falsePositives.length}, missed ${result.missed.length})`);
  console.log(`held out (written after the rules, never tuned on): ${heldOut.benign} benign, ${heldOut.poisoned} poisoned: precision ${heldOut.precision.toFixed(3)}  recall ${heldOut.recall.toFixed(3)}`);
  for (const s of heldOut.missed) console.log(`held out, missed: ${s.entry.id}: ${s.entry.tool.description}`);
  console.log('| kind | poisoned entries expecting it | found | false positives |\n|---|---|---|---|');
  for (const [kind, k] of Object.entries(result.perKind)) console.log(`| ${kind} | ${k.expected} | ${k.found} | ${k.falsePositives} |`);
  for (const s of result.falsePositives) console.log(`false positive: ${s.entry.id}: ${s.findings.map((f) => `${f.kind}/${f.rule} ${f.excerpt}`).join('; ')}`);
  for (const s of result.missed) console.log(`missed: ${s.entry.id}`);

  const { entries, contextOf } = loadCorpus();
  const jobs = entries.map((e) => ({ tool: e.tool, context: contextOf(e), real: e.note === 'real' }));
  const reps = 20;
  const time = (subset: typeof jobs, run: (j: (typeof jobs)[number]) => unknown): number[] => {
    const perRound: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const started = performance.now();
      for (let r = 0; r < reps; r++) for (const job of subset) run(job);
      perRound.push(((performance.now() - started) * 1000) / (reps * subset.length));
    }
    return perRound;
  };
  const real = jobs.filter((j) => j.real);
  time(jobs, (j) => scanDefinition(j.tool, j.context)); // warm-up
  const figures = {
    scanAll: median(time(jobs, (j) => scanDefinition(j.tool, j.context))),
    scanReal: median(time(real, (j) => scanDefinition(j.tool, j.context))),
    digestReal: median(time(real, (j) => digestOf(j.tool))),
  };
  console.log(`\n| case | µs per definition (median of ${rounds} rounds) |\n|---|---|`);
  console.log(`| scan, whole corpus | ${figures.scanAll.toFixed(1)} |`);
  console.log(`| scan, real definitions | ${figures.scanReal.toFixed(1)} |`);
  console.log(`| digest (sha256 over JCS), real definitions: the baseline | ${figures.digestReal.toFixed(1)} |`);
  console.log(`scan / digest on the real definitions: ${(figures.scanReal / figures.digestReal).toFixed(2)}`);
  const kinds = Object.fromEntries(Object.entries(result.perKind).map(([k, v]) => [k, v]));
  console.log(JSON.stringify({ bench: 'poisoning', definitions: result.definitions, precision: result.precision, recall: result.recall, perKind: kinds, heldOut: { definitions: heldOut.definitions, precision: heldOut.precision, recall: heldOut.recall }, usPerDefinition: figures }));
}
