import { binaryAvailable, freePort, startServerProcess, type ServerProcess } from './server-process.ts';

/** A real nats-server on a free loopback port, with its own temp store dir (JetStream state lives there). */
export interface NatsServer extends ServerProcess {
  /** `nats://127.0.0.1:<port>`, without credentials even when `auth` is set. */
  readonly url: string;
  /** `http://127.0.0.1:<port>`, the monitoring endpoint (`/varz`, `/connz`), when started with `monitor`. */
  readonly monitorUrl?: string;
}

const BINARY = process.env.GATEHOUSE_NATS_SERVER ?? 'nats-server';

/** Whether nats-server can run here (the NATS suites skip loudly without it, and fail under CI=true). */
export const natsServerAvailable = (): boolean => binaryAvailable(BINARY, 'GATEHOUSE_NATS_SERVER', 'NATS adapter suites');

export async function startNatsServer(options: { jetstream?: boolean; auth?: { user: string; pass: string }; monitor?: boolean } = {}): Promise<NatsServer> {
  const monitorPort = options.monitor ? await freePort() : undefined;
  const server = await startServerProcess(BINARY, (port, dir) => [
    ...(monitorPort ? ['-m', String(monitorPort)] : []),
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    ...(options.jetstream ? ['-js', '-sd', dir] : []),
    ...(options.auth ? ['--user', options.auth.user, '--pass', options.auth.pass] : []),
  ]);
  return Object.assign(server, { url: `nats://127.0.0.1:${server.port}`, ...(monitorPort ? { monitorUrl: `http://127.0.0.1:${monitorPort}` } : {}) });
}
