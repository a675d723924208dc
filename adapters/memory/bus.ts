import type { Bus, BusHandler, BusResponder, Subscription } from '../../src/ports.ts';
import { answer, unwrapReply } from '../../src/protocol/bus-reply.ts';
import { GatewayError } from '../../src/errors.ts';
import { subjectCovers } from '../../src/protocol/subjects.ts';
import type { BusPacket } from '../../src/protocol/cap.ts';

interface Responder {
  handler: BusResponder;
  queue?: string;
}

interface Subscriber {
  pattern: string[];
  exact: boolean;
  handler: BusHandler;
  queue?: string;
}

/**
 * The embedded bus: NATS subject semantics in one process. Delivery is asynchronous (a microtask), as on NATS,
 * so a publisher never runs inside its subscriber's stack. Packets are passed by reference, never encoded.
 */
export class MemoryBus implements Bus {
  readonly local = true;
  private readonly subscribers = new Set<Subscriber>();
  private readonly exactIndex = new Map<string, Set<Subscriber>>();
  private readonly queueCursor = new Map<string, number>();
  /** Request/reply responders by exact subject (the channel to a pool's upstreams never needs wildcards). */
  private readonly responders = new Map<string, Set<Responder>>();
  private closed = false;

  async publish(subject: string, packet: BusPacket): Promise<void> {
    if (this.closed) return;
    const targets = this.match(subject);
    if (targets.length === 0) return;
    queueMicrotask(() => {
      for (const sub of targets) {
        try {
          void Promise.resolve(sub.handler(packet, subject)).catch(() => undefined);
        } catch {
          // A throwing subscriber must not stop delivery to the others, as on a real bus.
        }
      }
    });
  }

  subscribe(subject: string, handler: BusHandler, options: { queue?: string } = {}): Subscription {
    const pattern = subject.split('.');
    const sub: Subscriber = { pattern, exact: !pattern.some((t) => t === '*' || t === '>'), handler, queue: options.queue };
    this.subscribers.add(sub);
    if (sub.exact) {
      let set = this.exactIndex.get(subject);
      if (!set) this.exactIndex.set(subject, (set = new Set()));
      set.add(sub);
    }
    return {
      unsubscribe: () => {
        this.subscribers.delete(sub);
        this.exactIndex.get(subject)?.delete(sub);
      },
    };
  }

  async request(subject: string, body: unknown, options: { timeoutMs: number; signal?: AbortSignal }): Promise<unknown> {
    if (options.signal?.aborted) throw new GatewayError('GH_ERR_CANCELLED', `the request on ${subject} was cancelled`);
    const responder = this.closed ? undefined : this.pickResponder(subject);
    if (!responder) throw new GatewayError('GH_ERR_UPSTREAM_UNAVAILABLE', `nobody answers on ${subject}`);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const reply = new Promise<unknown>((resolve, reject) => {
      timer = setTimeout(() => reject(new GatewayError('GH_ERR_UPSTREAM_TIMEOUT', `no answer on ${subject} within ${options.timeoutMs} ms`)), options.timeoutMs);
      onAbort = () => reject(new GatewayError('GH_ERR_CANCELLED', `the request on ${subject} was cancelled`));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // Delivered asynchronously, like a published packet: the responder never runs in the requester's stack.
      queueMicrotask(() => void answer(responder.handler, body, subject).then(resolve));
    });
    try {
      return unwrapReply(await reply, subject);
    } finally {
      clearTimeout(timer);
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
    }
  }

  reply(subject: string, handler: BusResponder, options: { queue?: string } = {}): Subscription {
    const responder: Responder = { handler, queue: options.queue };
    let set = this.responders.get(subject);
    if (!set) this.responders.set(subject, (set = new Set()));
    set.add(responder);
    return { unsubscribe: () => void this.responders.get(subject)?.delete(responder) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.responders.clear();
    this.subscribers.clear();
    this.exactIndex.clear();
  }

  /** One answer per request: the first plain responder, else the next member of a queue group (round robin). */
  private pickResponder(subject: string): Responder | undefined {
    const all = [...(this.responders.get(subject) ?? [])];
    if (all.length === 0) return undefined;
    const plain = all.find((r) => !r.queue);
    if (plain) return plain;
    const key = `reply\u0000${subject}`;
    const cursor = (this.queueCursor.get(key) ?? 0) % all.length;
    this.queueCursor.set(key, cursor + 1);
    return all[cursor];
  }

  private match(subject: string): Subscriber[] {
    const tokens = subject.split('.');
    const all: Subscriber[] = [];
    for (const sub of this.exactIndex.get(subject) ?? []) all.push(sub);
    for (const sub of this.subscribers) if (!sub.exact && subjectCovers(sub.pattern, tokens)) all.push(sub);
    return this.pickQueueMembers(subject, all);
  }

  /** One member per queue group (round robin); plain subscribers all receive the message. */
  private pickQueueMembers(subject: string, subs: Subscriber[]): Subscriber[] {
    if (!subs.some((s) => s.queue)) return subs;
    const out: Subscriber[] = [];
    const groups = new Map<string, Subscriber[]>();
    for (const sub of subs) {
      if (!sub.queue) out.push(sub);
      else {
        const group = groups.get(sub.queue) ?? [];
        group.push(sub);
        groups.set(sub.queue, group);
      }
    }
    for (const [queue, members] of groups) {
      const key = `${queue}\u0000${subject}`;
      const cursor = (this.queueCursor.get(key) ?? 0) % members.length;
      this.queueCursor.set(key, cursor + 1);
      out.push(members[cursor]);
    }
    return out;
  }
}
