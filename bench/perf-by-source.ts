/**
 * Where a Gatehouse process's CPU goes, by source file: reads `perf script` output (samples of `perf record -e
 * cpu-clock -g`, which count only time on a CPU, unlike V8's --cpu-prof, whose samples also land on a write(2) while
 * the writer waits for a core) and charges each sample to the source file of its nearest frame in the bundle
 * (dist/, through its source maps), so the runtime's work (builtins, JSON, system calls) counts for the code that
 * asked for it. Samples in the garbage collector are (gc); those with no bundle frame on their stack are Node's own
 * (node:…) or (native) / (kernel) with no JavaScript at all (the event loop, syscall entry and exit).
 *
 *   BENCH_NODE_ARGS=--perf-basic-prof npm run bench -- main &     # or any run that starts Gatehouse
 *   perf record -e cpu-clock -F 2000 -g -p <gatehouse pid> -o /tmp/perf.data -- sleep 6
 *   perf script -i /tmp/perf.data | node --import tsx bench/perf-by-source.ts
 *
 * --perf-basic-prof's map is not updated when V8 moves code, so a few samples are charged to a stale name (a
 * bundled library's function, say); read single items under 1% with that in mind. Env: TOP (40 lines).
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { SourceMapConsumer } from 'source-map-js';

const GC_FRAME = /Scavenge|MarkCompact|Heap::|GCTracer|Sweeper|ConcurrentMarking|MinorMark|IncrementalMarking/;
const BUNDLE_FRAME = /file:\/\/(\/\S+\/dist\/\S+?):(\d+):(\d+)/;
const NODE_FRAME = /JS:.* (node:[\w/_]+)/;

const maps = new Map<string, SourceMapConsumer | undefined>();
function sourceOf(file: string, line: number, column: number): string {
  if (!maps.has(file)) {
    try {
      maps.set(file, new SourceMapConsumer(JSON.parse(readFileSync(`${file}.map`, 'utf8'))));
    } catch {
      maps.set(file, undefined);
    }
  }
  const source = maps.get(file)?.originalPositionFor({ line, column: column - 1 }).source;
  return source ? source.replace(/^(\.\.\/)+/, '') : file;
}

/** The place one sample is charged to, from its frames, leaf first. */
function placeOf(frames: string[]): string {
  if (GC_FRAME.test(frames[0])) return '(gc)';
  for (const frame of frames) {
    const bundle = BUNDLE_FRAME.exec(frame);
    if (bundle) return sourceOf(bundle[1], Number(bundle[2]), Number(bundle[3]));
  }
  for (const frame of frames) {
    const node = NODE_FRAME.exec(frame);
    if (node) return node[1];
  }
  return frames[0].includes('kernel') ? '(kernel)' : '(native)';
}

const counts = new Map<string, number>();
let total = 0;
let frames: string[] = [];
const endSample = () => {
  if (frames.length === 0) return;
  const place = placeOf(frames);
  counts.set(place, (counts.get(place) ?? 0) + 1);
  total++;
  frames = [];
};
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => (line.trim() === '' ? endSample() : /^\s/.test(line) && frames.push(line.trim())));
lines.on('close', () => {
  endSample();
  const top = Number(process.env.TOP ?? 40);
  for (const [place, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${place}`);
  console.log(`${total} samples`);
});
