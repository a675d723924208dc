/**
 * The composition root of a worker (`gatehouse worker --pool NAME`): it hosts the upstreams of its pool, runs
 * their jobs from `job.<pool>` and `worker.<id>.jobs` with the same executor (and the same enforcement) as a
 * gateway, answers the gateways' lists and reads, and reports its load on `sys.heartbeat`.
 */
import { RedisStore } from '../../adapters/redis/store.ts';
import { systemClock } from '../../adapters/memory/clock.ts';
import type { Bus, Store } from '../ports.ts';
import type { Logger } from '../log.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import { GatewayError } from '../errors.ts';
import { Executor } from '../scheduler/executor.ts';
import { remoteJobClient } from '../scheduler/job-client-relay.ts';
import { Heartbeater } from '../worker/heartbeat.ts';
import { UpstreamHost } from '../worker/upstream-host.ts';
import { ulid } from '../protocol/ulid.ts';
import { connectBus, redisOf } from './distributed.ts';
import { createUpstreams } from './embedded.ts';
import { openTracing } from './tracing.ts';

/** How long a stopping worker lets its running jobs finish before cancelling them. */
const DRAIN_GRACE_MS = 30_000;

export interface RunningWorker {
  readonly workerId: string;
  readonly upstreams: string[];
  stop(): Promise<void>;
}

export async function startWorker(config: GatehouseConfig, pool: string, log: Logger): Promise<RunningWorker> {
  const redis = redisOf(config);
  const hosted = Object.fromEntries(Object.entries(config.upstreams).filter(([, u]) => u.pool === pool));
  if (Object.keys(hosted).length === 0) {
    throw new GatewayError('GH_ERR_CONFIG_INVALID', `no upstream in the config has pool: ${pool}; a worker hosts the upstreams of its pool`);
  }
  const workerId = `wk-${pool}-${ulid().slice(-8).toLowerCase()}`;
  // Its spans of upstream calls join the gateway's trace: the dispatch's traceparent is kept in the job's context.
  const tracing = openTracing(config, 'gatehouse-worker', workerId, log);
  await tracing.ready();
  let bus: Bus | undefined;
  let store: Store | undefined;
  try {
    bus = await connectBus(config, `gatehouse-${workerId}`, log);
    store = await RedisStore.connect({ url: redis.url });
  } catch (err) {
    await bus?.close();
    throw err;
  }
  const upstreams = createUpstreams({ ...config, upstreams: hosted }, log);
  const host = new UpstreamHost(bus, workerId, upstreams, log);
  const executor = new Executor(bus, store, systemClock, workerId, (name) => upstreams.get(name), (jobId, replica) => remoteJobClient(bus, replica, jobId), {
    maxParallel: config.workers.maxParallelJobs,
    acknowledge: true,
    log,
    tracer: tracing.tracer,
  });
  const heartbeat = new Heartbeater(
    bus,
    systemClock,
    { workerId, pool, maxParallelJobs: config.workers.maxParallelJobs, capabilities: [...upstreams.keys()] },
    () => executor.activeJobs,
    { intervalMs: config.workers.heartbeatInterval },
  );
  await host.start();
  executor.serve(pool);
  executor.serveDirect();
  heartbeat.start();
  return {
    workerId,
    upstreams: [...upstreams.keys()],
    stop: async () => {
      // Leave gently: gateways stop sending at the goodbye beat, and the jobs here finish first. Beating goes on
      // through the drain, or the gateways would declare this worker dead and its calls in doubt.
      await heartbeat.goodbye();
      await executor.drain(DRAIN_GRACE_MS);
      heartbeat.stop();
      await host.stop();
      await Promise.allSettled([bus.close(), store.close(), tracing.close()]);
    },
  };
}
