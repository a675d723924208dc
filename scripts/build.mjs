// `npm run build` (npm's prepare script runs it on install): the CLI and everything it loads, bundled with esbuild
// into dist/, one file per command and shared chunks. A start then reads a few files instead of some 750 modules
// (src/, zod, undici, ajv, yaml …), which is most of what a start cost. Type checking is tsc's (`npm test`).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}dist`, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Less to parse at every start; names are kept, so stack traces and logs still read.
  minifyWhitespace: true,
  minifySyntax: true,
  // Loaded only when used, from node_modules: the OpenTelemetry SDK with telemetry.otlp (the tests check a start
  // without it never loads it), undici for HTTP upstreams, webhooks, sinks and OAuth (adapters/http/undici.ts).
  external: ['@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/resources', '@opentelemetry/core', 'undici'],
  // CommonJS dependencies call require() on Node's modules; an ESM bundle has no require of its own.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
