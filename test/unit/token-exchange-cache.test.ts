import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenExchange } from '../../adapters/oauth/token-exchange.ts';

// The README's cap: exchanged tokens are kept for 10,000 callers at most, the oldest going first past it.
describe('token exchange cache', () => {
  let server: Server;
  const exchanged: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        const subject = new URLSearchParams(body).get('subject_token')!;
        exchanged.push(subject);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ access_token: `for-${subject}`, expires_in: 3600 }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('keeps 10,000 callers and forgets the oldest for the next one', { timeout: 60_000 }, async () => {
    const port = (server.address() as AddressInfo).port;
    const exchange = new TokenExchange({ tokenEndpoint: `http://127.0.0.1:${port}/token`, clientId: 'gatehouse', clientSecret: 's', resource: 'http://upstream/mcp' });
    const authorize = (caller: number) => exchange.credential(`caller-${caller}`).authorization();
    for (let first = 0; first < 10_000; first += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, i) => authorize(first + i)));
    }
    expect(exchanged).toHaveLength(10_000);
    expect(await authorize(9_999)).toBe('Bearer for-caller-9999');
    expect(exchanged).toHaveLength(10_000);

    await authorize(10_000);
    expect(exchanged).toHaveLength(10_001);
    await authorize(1);
    expect(exchanged).toHaveLength(10_001);
    await authorize(0);
    expect(exchanged.slice(-1)).toEqual(['caller-0']);
  });
});
