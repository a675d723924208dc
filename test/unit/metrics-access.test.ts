import { describe, expect, it } from 'vitest';
import { MetricsAccess } from '../../src/api/metrics-route.ts';

const anonymous = { principal: 'local', tenant: 'default' };
const bearer = (key: string) => `Bearer ${key}`;

describe('who may read /metrics', () => {
  it('on loopback without keys or token: anyone; beyond loopback: nobody', () => {
    expect(new MetricsAccess({ host: '127.0.0.1', apiKeys: [], anonymous }).refusal(undefined, undefined)).toBeUndefined();
    expect(new MetricsAccess({ host: '0.0.0.0', apiKeys: [], anonymous }).refusal(undefined, undefined)).toMatchObject({ status: 403, code: 'GH_ERR_FORBIDDEN' });
  });

  it('beyond loopback with a token: the token only', () => {
    const access = new MetricsAccess({ host: '0.0.0.0', apiKeys: [], anonymous, token: 'metrics-token-0123456789' });
    expect(access.refusal(undefined, undefined)).toMatchObject({ status: 401, code: 'GH_ERR_UNAUTHORIZED' });
    expect(access.refusal(bearer('metrics-token-0123456789x'), undefined)).toMatchObject({ status: 401 });
    expect(access.refusal(bearer('metrics-token-0123456789'), undefined)).toBeUndefined();
  });

  it('with keys: the metrics and admin roles, by bearer or X-API-Key; approver alone is not enough', () => {
    const apiKeys = [
      { key: 'approver-key-0123456789', principal: 'a', tenant: 'default', roles: ['approver'] },
      { key: 'metrics-key-0123456789', principal: 'm', tenant: 'default', roles: ['metrics'] },
      { key: 'admin-key-01234567890', principal: 'r', tenant: 'default', roles: ['admin'] },
    ];
    const access = new MetricsAccess({ host: '127.0.0.1', apiKeys, anonymous });
    expect(access.refusal(undefined, undefined)).toMatchObject({ status: 401 });
    expect(access.refusal(bearer('approver-key-0123456789'), undefined)).toMatchObject({ status: 403, code: 'GH_ERR_FORBIDDEN' });
    expect(access.refusal(bearer('metrics-key-0123456789'), undefined)).toBeUndefined();
    expect(access.refusal(undefined, 'admin-key-01234567890')).toBeUndefined();
  });
});
