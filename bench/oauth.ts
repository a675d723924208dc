/**
 * What checking a bearer costs per request, in process: an API key (HttpGuard: a SHA-256 and a constant-time
 * compare per configured key) against an OAuth access token (OAuthResource.admit: the JWT's signature, claims and
 * scopes, with the issuer's keys cached after the first fetch), for RS256 and ES256 tokens from the tests'
 * authorization server on loopback: a token seen before (taken from the verified-token cache by its digest) and
 * a new token every time (its signature checked). Reports µs per check and checks per second, the median over
 * rounds. Env: BENCH_OAUTH_CHECKS (5000 per round; new tokens: a tenth of it), BENCH_OAUTH_ROUNDS (5).
 */
import { HttpGuard } from '../src/api/http-guard.ts';
import { OAuthResource } from '../src/api/oauth-resource.ts';
import { createTokenVerifier } from '../adapters/oauth/token-verifier.ts';
import { startOAuthServer } from '../test/helpers/oauth-server.ts';
import { median } from './stats.ts';

const AUDIENCE = 'https://gatehouse.example.com/mcp';

export async function printOAuthBench(): Promise<void> {
  const checks = Number(process.env.BENCH_OAUTH_CHECKS ?? 5_000);
  const rounds = Number(process.env.BENCH_OAUTH_ROUNDS ?? 5);
  const as = await startOAuthServer();
  try {
    const key = 'bench-api-key-0123456789';
    const guard = new HttpGuard({ host: '127.0.0.1', port: 0, allowedHosts: [], allowedOrigins: [], apiKeys: [{ key, principal: 'bench', tenant: 'default' }], anonymous: { principal: 'x', tenant: 'default' } });
    const verifier = createTokenVerifier({ issuer: as.issuer, audience: AUDIENCE, algorithms: ['RS256', 'ES256'], clockToleranceMs: 30_000, jwksCooldownMs: 0 });
    const resource = new OAuthResource(verifier, { issuer: as.issuer, audience: AUDIENCE, requiredScopes: ['mcp:tools'], claims: { principal: 'sub' } });
    const fresh = Math.max(1, Math.floor(checks / 10));
    const sign = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => as.sign({ aud: AUDIENCE, scope: 'mcp:tools', jti: `${Math.random()}-${i}` })));
    const [rs256, ...rsNew] = await sign(1 + fresh * (rounds + 1));
    await as.rotate();
    const [es256, ...esNew] = await sign(1 + fresh * (rounds + 1));
    const cases: [string, number, () => unknown][] = [
      ['API key', checks, () => guard.authenticate(`Bearer ${key}`, undefined)],
      ['JWT RS256, seen before', checks, () => resource.admit(rs256)],
      ['JWT ES256, seen before', checks, () => resource.admit(es256)],
      ['JWT RS256, new each time', fresh, () => resource.admit(rsNew.pop()!)],
      ['JWT ES256, new each time', fresh, () => resource.admit(esNew.pop()!)],
    ];
    for (const [, , check] of cases) {
      const first = (await check()) as { refused?: unknown } | undefined;
      if (first && 'refused' in first && first.refused) throw new Error('the bench token was refused');
    }
    const perCase = new Map<string, number[]>(cases.map(([name]) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const [name, n, check] of cases) {
        const started = performance.now();
        for (let i = 0; i < n; i++) await check();
        perCase.get(name)!.push(((performance.now() - started) * 1000) / n);
      }
    }
    console.log(`\nChecking a bearer, in process: ${checks} checks per round (${fresh} for new tokens), median of ${rounds} rounds`);
    console.log('| bearer | µs per check | checks/s |\n|---|---|---|');
    const figures: Record<string, number> = {};
    for (const [name] of cases) {
      const us = median(perCase.get(name)!);
      figures[name] = us;
      console.log(`| ${name} | ${us.toFixed(1)} | ${Math.round(1e6 / us).toLocaleString('en-US')} |`);
    }
    console.log(JSON.stringify({ bench: 'oauth', checks, rounds, usPerCheck: figures }));
  } finally {
    await as.close();
  }
}
