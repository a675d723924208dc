import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../log.ts';
import { GatewayError } from '../../errors.ts';
import { flag, parseArgs } from '../args.ts';
import { DEFAULT_CONFIG_FILE } from '../state.ts';

export const WORKER_HELP = `Usage: gatehouse worker --pool NAME [--config FILE]

Joins a worker pool (distributed mode): hosts the upstreams whose config has \`pool: NAME\`, runs their
jobs as they come from the gateways over NATS, and reports its load on sys.heartbeat. The config is the
gateways' own file (default ./gatehouse.yaml), with mode: distributed, nats and redis.`;

export async function runWorker(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: ['config', 'pool'] });
  const pool = flag(args, 'pool');
  if (!pool) throw new GatewayError('GH_ERR_USAGE', '--pool is required');
  const { config, file } = loadConfig(flag(args, 'config') ?? DEFAULT_CONFIG_FILE);
  const log = createLogger(config.log.level);
  const { startWorker } = await import('../../runtime/worker.ts'); // NATS and Redis load only for a worker
  // Listened for before the worker starts and says so, as `start` does: a signal before would skip the clean stop.
  const stopAsked = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const worker = await startWorker(config, pool, log);
  console.log(`Gatehouse worker ${worker.workerId} (config ${file})\n  pool: ${pool}\n  upstreams: ${worker.upstreams.join(', ')}`);
  await stopAsked;
  await worker.stop();
  return 0;
}
