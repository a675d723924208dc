import { GatewayError } from '../errors.ts';
import type { GatehouseConfig } from './schema.ts';

/** The variable that moves the HTTP address without editing the config file (a tracked `gatehouse.yaml`). */
export const LISTEN_VARIABLE = 'GATEHOUSE_LISTEN';

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const PORT = /^\d{1,5}$/;

/**
 * The config with `listen.http` taken from `start --listen` or else `$GATEHOUSE_LISTEN`, over the file's: the flag
 * wins over the variable, which wins over the file. `HOST:PORT`, or a bare `PORT` on loopback.
 */
export function withListenOverride<C extends Pick<GatehouseConfig, 'listen'>>(config: C, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): C {
  const variable = env[LISTEN_VARIABLE];
  const [value, from] = flag !== undefined ? [flag, '--listen'] : variable ? [variable, LISTEN_VARIABLE] : [undefined, ''];
  if (value === undefined) return config;
  const http = listenAddress(value.trim());
  if (!http) {
    const message = `${from} must be HOST:PORT (for example 127.0.0.1:8787) or a port, got ${JSON.stringify(value)}`;
    throw new GatewayError(from === '--listen' ? 'GH_ERR_USAGE' : 'GH_ERR_CONFIG_INVALID', message, { data: { from, value } });
  }
  return { ...config, listen: { ...config.listen, http } };
}

function listenAddress(value: string): string | undefined {
  if (PORT.test(value)) return Number(value) <= 65535 ? `127.0.0.1:${value}` : undefined;
  const match = HOST_PORT.exec(value);
  return match && Number(match[2]) <= 65535 ? value : undefined;
}
