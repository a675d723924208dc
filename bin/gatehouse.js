#!/usr/bin/env node
// Runs the bundle that `npm install` built into dist/ (the prepare script: npm run build, scripts/build.mjs). From source through
// tsx, a dev dependency, when there is no build or GATEHOUSE_FROM_SOURCE=1 (while editing src/ without rebuilding).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/main.js', import.meta.url);
let main;
if (process.env.GATEHOUSE_FROM_SOURCE !== '1' && existsSync(compiled)) {
  ({ main } = await import(compiled.href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
