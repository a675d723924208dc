import type { Bus, BusHandler, Subscription } from '../../src/ports.ts';
import type { BusPacket } from '../../src/protocol/cap.ts';

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
  private readonly subscribers = new Set<Subscriber>();
  private readonly exactIndex = new Map<string, Set<Subscriber>>();
  private readonly queueCursor = new Map<string, number>();
  private closed = false;

  async publish(subject: string, packet: BusPacket): Promise<void> {
    if (this.closed) return;
    const targets = this.match(subject);
    if (targets.length === 0) return;
    queueMicrotask(() => {
      for (const sub of targets) {
        try {
          sub.handler(packet, subject);
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

  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
    this.exactIndex.clear();
  }

  private match(subject: string): Subscriber[] {
    const tokens = subject.split('.');
    const all: Subscriber[] = [];
    for (const sub of this.exactIndex.get(subject) ?? []) all.push(sub);
    for (const sub of this.subscribers) if (!sub.exact && matches(sub.pattern, tokens)) all.push(sub);
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

function matches(pattern: string[], tokens: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return tokens.length > i;
    if (i >= tokens.length) return false;
    if (p !== '*' && p !== tokens[i]) return false;
  }
  return pattern.length === tokens.length;
}
