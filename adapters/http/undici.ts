import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);
let loaded: typeof Undici | undefined;

/**
 * undici, loaded when first used. It is over a hundred modules, and a gateway with no HTTP upstream, webhook, audit
 * sink or OAuth (every `gatehouse wrap`) never needs it: loading it at start was a fifth of wrap's start-up.
 */
export function undici(): typeof Undici {
  return (loaded ??= require('undici') as typeof Undici);
}
