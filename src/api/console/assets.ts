import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { APPROVER_PAGE } from '../context.ts';
import { packageFile } from '../../protocol/package-files.ts';

const HERE = packageFile('src/api/console/assets');
const require = createRequire(import.meta.url);

/**
 * Files of npm packages the console serves as they are (no CDN, no build step): name under /assets/ → module path,
 * resolved from node_modules at startup. Add a charting or partial-update library here.
 */
const VENDOR: Record<string, string> = {};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * The console's stylesheet and scripts at /assets/<name>: the files of src/api/console/assets/ and VENDOR's, read
 * once, served to anyone (nothing in them is private: the login page needs the stylesheet before a session).
 * Only those names: the route never maps a request onto the file system.
 */
export function registerAssets(app: FastifyInstance): void {
  const files = new Map<string, string>();
  for (const name of readdirSync(HERE)) if (TYPES[extname(name)]) files.set(name, join(HERE, name));
  for (const [name, module] of Object.entries(VENDOR)) files.set(name, require.resolve(module));
  const loaded = new Map<string, Buffer>();
  app.get('/assets/:name', { config: { approver: APPROVER_PAGE } }, async (request, reply) => {
    const name = (request.params as { name: string }).name;
    const path = files.get(name);
    if (!path) return reply.code(404).type('text/plain; charset=utf-8').send('no such asset');
    let body = loaded.get(name);
    if (!body) loaded.set(name, (body = readFileSync(path)));
    return reply.code(200).type(TYPES[extname(name)]).send(body);
  });
}
