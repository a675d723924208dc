import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../../adapters/memory/bus.ts';
import type { Bus, Clock } from '../../src/ports.ts';
import { CAP_PROTOCOL_VERSION, Subjects, type BusPacket } from '../../src/protocol/cap.ts';
import { WorkerRegistry } from '../../src/scheduler/worker-registry.ts';
import { Heartbeater, type WorkerInfo } from '../../src/worker/heartbeat.ts';

/** Lets the memory bus deliver what was published (it delivers on a microtask). */
const delivered = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A clock that moves only when a test sets `t`. */
function fakeClock(): Clock & { t: number } {
  const clock: Clock & { t: number } = { t: 0, now: () => clock.t, sleep: async () => undefined };
  return clock;
}

const info = (workerId: string, pool = 'fs', maxParallelJobs = 4): WorkerInfo => ({ workerId, pool, maxParallelJobs, capabilities: ['filesystem'] });

describe('WorkerRegistry', () => {
  let bus: MemoryBus;
  let clock: ReturnType<typeof fakeClock>;
  let registry: WorkerRegistry;

  beforeEach(() => {
    bus = new MemoryBus();
    clock = fakeClock();
    registry = new WorkerRegistry(bus, clock, { intervalMs: 1000, missedBeats: 3 });
    registry.start();
  });
  afterEach(async () => {
    registry.stop();
    await bus.close();
  });

  async function beat(workerId: string, activeJobs = 0, pool = 'fs', maxParallelJobs = 4): Promise<void> {
    await bus.publish(Subjects.heartbeat, {
      traceId: '',
      senderId: workerId,
      createdAt: clock.t,
      protocolVersion: CAP_PROTOCOL_VERSION,
      payload: { kind: 'heartbeat', heartbeat: { workerId, pool, activeJobs, maxParallelJobs, capabilities: [], labels: {} } },
    });
    await delivered();
  }

  it('picks the worker with the lowest reported load, relative to its capacity', async () => {
    await beat('w1', 2, 'fs', 4); // 0.5
    await beat('w2', 3, 'fs', 8); // 0.375
    await beat('w3', 1, 'fs', 1); // 1
    expect(registry.pick('fs')).toBe('w2');
    expect(registry.pick('fs')).toBe('w2');
  });

  it('counts the jobs it dispatched that the heartbeats do not show yet', async () => {
    await beat('w1');
    await beat('w2');
    registry.noteDispatched('w1', 'J1');
    expect(registry.pick('fs')).toBe('w2');
    registry.noteDispatched('w2', 'J2');
    registry.noteDispatched('w2', 'J3');
    expect(registry.pick('fs')).toBe('w1');
    registry.noteEnded('w2', 'J2');
    registry.noteEnded('w2', 'J3');
    registry.noteDispatched('w1', 'J4');
    expect(registry.pick('fs')).toBe('w2');
  });

  it('takes the larger of the reported and the locally dispatched count', async () => {
    await beat('w1', 3);
    await beat('w2', 0);
    registry.noteDispatched('w1', 'J1'); // already counted in w1's 3
    registry.noteDispatched('w2', 'J2');
    registry.noteDispatched('w2', 'J3');
    expect(registry.pick('fs')).toBe('w2');
  });

  it('shares the work among equally loaded workers in turn', async () => {
    await beat('w1', 1);
    await beat('w2', 1);
    await beat('w3', 2);
    const picks = [registry.pick('fs'), registry.pick('fs'), registry.pick('fs'), registry.pick('fs')];
    expect(picks).toEqual(['w1', 'w2', 'w1', 'w2']);
  });

  it('still picks a worker at capacity when all are (the worker queues), and none when the pool is empty', async () => {
    await beat('w1', 4, 'fs', 4);
    await beat('w2', 6, 'fs', 4);
    expect(registry.pick('fs')).toBe('w1');
    expect(registry.pick('git')).toBeUndefined();
  });

  it('keeps pools apart, and registers a worker of a pool it has not seen', async () => {
    await beat('f1', 3, 'fs');
    await beat('g1', 0, 'git');
    await beat('n1', 0, 'brand-new');
    expect(registry.pick('fs')).toBe('f1');
    expect(registry.pick('git')).toBe('g1');
    expect(registry.pick('brand-new')).toBe('n1');
  });

  it('declares a worker dead after 3 missed beats, not 2, and fires onDead once', async () => {
    const dead: string[] = [];
    registry.onDead((id) => dead.push(id));
    await beat('w1');
    await beat('w2', 1); // busier: w1 is picked while live

    clock.t = 2500;
    await beat('w2', 1);
    clock.t = 3000; // w1 missed 2 beats and is late for the 3rd: still live
    registry.sweep();
    expect(dead).toEqual([]);
    expect(registry.pick('fs')).toBe('w1');

    clock.t = 3001; // 3 beats missed
    expect(registry.pick('fs')).toBe('w2'); // never a dead worker, even before the sweep runs
    registry.sweep();
    registry.sweep();
    clock.t = 5000;
    registry.sweep();
    expect(dead).toEqual(['w1']);
  });

  it('takes a revived worker back as live', async () => {
    const dead: string[] = [];
    registry.onDead((id) => dead.push(id));
    await beat('w1');
    clock.t = 10_000;
    registry.sweep();
    expect(registry.pick('fs')).toBeUndefined();

    await beat('w1');
    expect(registry.pick('fs')).toBe('w1');
    clock.t = 20_000;
    registry.sweep();
    expect(dead).toEqual(['w1', 'w1']);
  });

  it('runs every listener when one throws, and stops calling one that unsubscribed', async () => {
    const seen: string[] = [];
    registry.onDead(() => {
      throw new Error('listener bug');
    });
    const off = registry.onDead((id) => seen.push(`a:${id}`));
    registry.onDead((id) => seen.push(`b:${id}`));
    await beat('w1');
    await beat('w2');
    off();
    clock.t = 4000;
    registry.sweep();
    expect(seen).toEqual(['b:w1', 'b:w2']);
  });
});

describe('Heartbeater', () => {
  let bus: MemoryBus;
  let clock: ReturnType<typeof fakeClock>;
  let packets: BusPacket[];

  beforeEach(() => {
    // Fake timers drive the beat interval; only timers, so nothing reads the wall clock.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    bus = new MemoryBus();
    clock = fakeClock();
    packets = [];
    bus.subscribe(Subjects.heartbeat, (p) => void packets.push(p));
  });
  afterEach(async () => {
    vi.useRealTimers();
    await bus.close();
  });

  it('publishes a CAP Heartbeat at once and then every interval, until stopped', async () => {
    let active = 1;
    const hb = new Heartbeater(bus, clock, { ...info('w1', 'fs', 4), labels: { zone: 'a' } }, () => active, { intervalMs: 500 });
    hb.start();
    await delivered();
    expect(packets).toHaveLength(1);
    const [packet] = packets;
    expect(packet).toMatchObject({ senderId: 'w1', protocolVersion: CAP_PROTOCOL_VERSION, createdAt: 0 });
    if (packet.payload.kind !== 'heartbeat') throw new Error('not a heartbeat');
    const { heartbeat } = packet.payload;
    expect(heartbeat).toMatchObject({ workerId: 'w1', pool: 'fs', activeJobs: 1, maxParallelJobs: 4, capabilities: ['filesystem'], labels: { zone: 'a' } });
    expect(heartbeat.cpuLoad).toBeGreaterThanOrEqual(0);

    active = 3;
    vi.advanceTimersByTime(1000);
    await delivered();
    expect(packets.map((p) => (p.payload.kind === 'heartbeat' ? p.payload.heartbeat.activeJobs : -1))).toEqual([1, 3, 3]);

    hb.stop();
    vi.advanceTimersByTime(5000);
    await delivered();
    expect(packets).toHaveLength(3);
  });

  it('keeps beating with capacity 0 after its goodbye: a draining worker gets no jobs and is not declared dead until it stops', async () => {
    const registry = new WorkerRegistry(bus, clock, { intervalMs: 1000, missedBeats: 3 });
    registry.start();
    const dead: string[] = [];
    registry.onDead((id) => dead.push(id));
    const hb = new Heartbeater(bus, clock, info('w1'), () => 2, { intervalMs: 1000 });
    hb.start();
    await delivered();
    expect(registry.pick('fs')).toBe('w1');

    await hb.goodbye();
    await delivered();
    expect(registry.pick('fs')).toBeUndefined();
    for (let second = 1; second <= 10; second++) {
      clock.t = second * 1000;
      vi.advanceTimersByTime(1000); // a beat, and the registry's sweep
      await delivered();
    }
    expect(dead).toEqual([]);
    expect(registry.pick('fs')).toBeUndefined();
    expect(packets.slice(1).map((p) => (p.payload.kind === 'heartbeat' ? p.payload.heartbeat.maxParallelJobs : -1))).toEqual(Array(11).fill(0));

    hb.stop(); // the drain has ended
    clock.t = 13_001;
    vi.advanceTimersByTime(3000);
    expect(dead).toEqual(['w1']);
    registry.stop();
  });

  it('survives a bus that rejects every publish and keeps trying', async () => {
    let attempts = 0;
    const down: Bus = Object.assign(Object.create(bus) as Bus, {
      publish: async () => {
        attempts++;
        throw new Error('bus down');
      },
    });
    const hb = new Heartbeater(down, clock, info('w1'), () => 0);
    hb.start();
    vi.advanceTimersByTime(3000);
    await delivered();
    hb.stop();
    expect(attempts).toBe(4);
  });
});
