/**
 * The result scanner (src/call/result-scan.ts) against its labelled corpus (test/fixtures/tool-results: real
 * results of server-filesystem, server-everything, server-memory and the fetch fixture, benign and with planted
 * attacks): precision, recall, and what a scan costs per 10 KB of result text, beside JSON.stringify of the same
 * results (what the output cap and the audit do with every result anyway), in the same process. The cost is CPU time
 * (process.cpuUsage), which other processes on a shared machine do not inflate. "Result text" is the results' JSON
 * (content and structuredContent), as the target was set; the scanner reads a text given twice once, so the cost per
 * 10 KB of the distinct texts it reads is printed too. Env: BENCH_RESULT_SCAN_ROUNDS (7).
 */
import { scanResult } from '../src/call/result-scan.ts';
import { distinctTextLength, loadHeldOutResults, loadResultCorpus, scoreResultCorpus, textLength } from '../test/fixtures/tool-results/corpus.ts';
import { median } from './stats.ts';

export function printResultScanBench(): void {
  const rounds = Number(process.env.BENCH_RESULT_SCAN_ROUNDS ?? 7);
  const entries = loadResultCorpus();
  const s = scoreResultCorpus(entries);
  const real = entries.filter((e) => e.label === 'benign');
  console.log(`\nThe result scanner against its labelled corpus: ${s.benign} benign, ${s.malicious} malicious (all real tool results)`);
  console.log(`precision ${s.precision.toFixed(3)}  recall ${s.recall.toFixed(3)}  (flagged ${s.truePositives + s.falsePositives.length}, false positives ${s.falsePositives.length}, missed ${s.falseNegatives.length})`);
  for (const e of s.falsePositives) console.log(`false positive: ${e.id}`);
  for (const e of s.falseNegatives) console.log(`missed: ${e.id}`);
  const h = scoreResultCorpus(loadHeldOutResults());
  console.log(`held out (${h.benign} benign, ${h.malicious} malicious, written after the rules, never tuned on): precision ${h.precision.toFixed(3)}  recall ${h.recall.toFixed(3)}`);
  for (const e of [...h.falsePositives, ...h.falseNegatives]) console.log(`  held out, ${e.label === 'benign' ? 'false positive' : 'missed'}: ${e.id}`);

  const chars = real.reduce((n, e) => n + textLength(e.result), 0);
  const per10k = (run: () => void): number[] => {
    const out: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const started = process.cpuUsage();
      run();
      const used = process.cpuUsage(started);
      out.push((used.user + used.system) / (chars / 10_240));
    }
    return out;
  };
  per10k(() => real.forEach((e) => scanResult(e.result))); // warm-up
  const scan = median(per10k(() => real.forEach((e) => scanResult(e.result))));
  const json = median(per10k(() => real.forEach((e) => JSON.stringify(e.result))));
  console.log(`cost on the benign results (${(chars / 1024).toFixed(0)} KB of text, median of ${rounds} rounds): scan ${scan.toFixed(1)} µs per 10 KB; JSON.stringify of the same ${json.toFixed(1)} µs per 10 KB (ratio ${(scan / json).toFixed(1)}x)`);
  const distinct = distinctTextLength(real.map((e) => e.result));
  console.log(`  per 10 KB of the distinct texts the scanner reads (${(distinct / 1024).toFixed(0)} KB): scan ${((scan * chars) / distinct).toFixed(1)} µs`);
}
