import { createHash } from 'node:crypto';
import { subjectCovers } from '../../src/protocol/subjects.ts';
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Subscription } from '../../src/ports.ts';
import type { Logger } from '../../src/log.ts';
import type { BusPacket } from '../../src/protocol/cap.ts';
import { messageOf, type NatsLink } from './connection.ts';

/** Which subjects are durable, and how their queue subscriptions acknowledge. */
export interface JetStreamOptions {
  /** The stream's name. Default `GATEHOUSE_JOBS`. */
  stream?: string;
  /**
   * The subjects the stream keeps (NATS wildcards allowed), e.g. `['job.>', 'sys.job.submit']`. A publish there
   * waits for JetStream to store it; a queue subscription there is a durable consumer.
   */
  subjects: string[];
  /**
   * How long a consumer member that took a message may stay silent before the message goes to another member,
   * in ms: how fast a crashed process's messages come back. A handler still running keeps its message (it
   * reports progress every half of this). Default 30000.
   */
  ackWaitMs?: number;
  /** How long after a handler rejects its message is delivered again (to any member), in ms. Default 1000. */
  redeliverDelayMs?: number;
}

const DEFAULT_STREAM = 'GATEHOUSE_JOBS';
const MAX_AGE_MS = 24 * 60 * 60 * 1_000;
// A publish retried within this window (same message id) is stored once.
const DUPLICATE_WINDOW_MS = 2 * 60 * 1_000;
const DEFAULT_ACK_WAIT_MS = 30_000;
const DEFAULT_REDELIVER_DELAY_MS = 1_000;
// How long to wait before trying again to set up a consumer that failed (NATS down, JetStream recovering).
const CONSUMER_RETRY_MS = 1_000;
const STREAM_NAME_IN_USE = 10_058;

/** What a consumed message is handed to; it resolves (ack) or rejects/throws (redeliver later). */
export type DurableHandler = (data: Uint8Array, subject: string) => unknown;

/** The JetStream part of the NATS bus: one stream over the durable subjects, and durable queue consumers. */
export class JobStream {
  private readonly patterns: string[][];
  private readonly js: JetStreamClient;
  private readonly consumers = new Set<ConsumerMessages>();
  private closed = false;

  private constructor(
    private readonly link: NatsLink,
    private readonly jsm: JetStreamManager,
    private readonly name: string,
    private readonly options: JetStreamOptions,
    private readonly log: Logger,
  ) {
    this.patterns = options.subjects.map((s) => s.split('.'));
    this.js = jsm.jetstream();
  }

  /** Creates the stream, or brings an existing one to these subjects and limits (other replicas do the same). */
  static async open(link: NatsLink, options: JetStreamOptions, log: Logger): Promise<JobStream> {
    const name = options.stream ?? DEFAULT_STREAM;
    const limits = { subjects: options.subjects, max_age: nanos(MAX_AGE_MS), duplicate_window: nanos(DUPLICATE_WINDOW_MS) };
    try {
      const jsm = await jetstreamManager(link.nc);
      try {
        await jsm.streams.add({ name, storage: StorageType.File, retention: RetentionPolicy.Limits, ...limits });
      } catch (err) {
        if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
        await jsm.streams.update(name, limits);
      }
      return new JobStream(link, jsm, name, options, log);
    } catch (err) {
      throw link.failure(`setting up the JetStream stream ${name}`, err);
    }
  }

  /** Whether every subject `subject` can match is kept by the stream (true for a literal subject it keeps). */
  keeps(subject: string): boolean {
    const tokens = subject.split('.');
    return this.patterns.some((pattern) => subjectCovers(pattern, tokens));
  }

  /** Stores `data` and waits for JetStream's acknowledgement; a repeated `messageId` is stored once. */
  async publish(subject: string, data: Uint8Array, messageId: string | undefined): Promise<void> {
    try {
      await this.js.publish(subject, data, messageId ? { msgID: messageId } : undefined);
    } catch (err) {
      throw this.link.failure(`storing a message on ${subject}`, err);
    }
  }

  /**
   * A durable consumer shared by every subscriber (in any process) with the same queue and subject: each message
   * goes to one of them, and stays in the stream until a handler settles it. Set up in the background, retried
   * until it works, since a subscriber cannot be told later that its subscription failed.
   */
  consume(subject: string, queue: string, handler: DurableHandler): Subscription {
    let stopped = false;
    let messages: ConsumerMessages | undefined;
    const start = async () => {
      const durable = durableName(queue, subject);
      while (!stopped && !this.closed) {
        try {
          await this.jsm.consumers.add(this.name, {
            durable_name: durable,
            filter_subject: subject,
            ack_policy: AckPolicy.Explicit,
            ack_wait: nanos(this.ackWaitMs),
            deliver_policy: DeliverPolicy.All,
            max_deliver: -1,
          });
          const consumer = await this.js.consumers.get(this.name, durable);
          if (stopped || this.closed) return;
          messages = await consumer.consume({ callback: (msg) => this.deliver(msg, handler) });
          this.consumers.add(messages);
          if (stopped || this.closed) void this.stop(messages);
          return;
        } catch (err) {
          this.log.warn(`cannot consume ${subject} as ${durable} yet; retrying`, { error: messageOf(err) });
          await new Promise((r) => setTimeout(r, CONSUMER_RETRY_MS).unref());
        }
      }
    };
    void start();
    return {
      unsubscribe: () => {
        stopped = true;
        if (messages) void this.stop(messages);
      },
    };
  }

  /** Stops every consumer of this process; the durable consumers stay on the server for the next ones. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.consumers].map((m) => this.stop(m)));
  }

  private get ackWaitMs(): number {
    return this.options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  }

  private deliver(msg: JsMsg, handler: DurableHandler): void {
    // Tell the server the message is being worked on, so a long handler does not get it redelivered elsewhere.
    const progress = setInterval(() => ignoreClosed(() => msg.working()), this.ackWaitMs / 2);
    Promise.resolve()
      .then(() => handler(msg.data, msg.subject))
      .then(
        () => ignoreClosed(() => msg.ack()),
        (err: unknown) => {
          this.log.warn(`a handler failed on ${msg.subject}; redelivering`, { deliveries: msg.info.deliveryCount, error: messageOf(err) });
          ignoreClosed(() => msg.nak(this.options.redeliverDelayMs ?? DEFAULT_REDELIVER_DELAY_MS));
        },
      )
      .finally(() => clearInterval(progress));
  }

  private async stop(messages: ConsumerMessages): Promise<void> {
    this.consumers.delete(messages);
    await messages.close().catch(() => undefined);
  }
}

/**
 * The JetStream message id that makes a retried publish a duplicate: one per job request or result and subject.
 * The subject is part of it because JetStream deduplicates across the whole stream, and the same job request
 * travels on two kept subjects (`sys.job.submit`, then `job.<pool>`): `jobreq:<jobId>` alone would drop the second.
 * Other packets (progress, cancel, heartbeats) carry none: two of them are two messages.
 */
export function messageIdOf(subject: string, packet: BusPacket): string | undefined {
  const { payload } = packet;
  if (payload?.kind === 'jobRequest') return `jobreq:${payload.jobRequest.jobId}:${subject}`;
  if (payload?.kind === 'jobResult') return `jobres:${payload.jobResult.jobId}:${subject}`;
  return undefined;
}

/**
 * `gh_<queue>_<subject>` in the characters NATS allows in a durable name, plus a digest of the exact pair, so
 * that subjects differing only in the characters replaced (`job.a_b`, `job.a.b`) get different consumers.
 */
export function durableName(queue: string, subject: string): string {
  const readable = `gh_${queue}_${subject}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 48);
  const digest = createHash('sha256').update(`${queue}\u0000${subject}`).digest('hex').slice(0, 10);
  return `${readable}_${digest}`;
}

/** Acks after the connection closed fail; the message then comes back after the ack wait, as it should. */
function ignoreClosed(act: () => void): void {
  try {
    act();
  } catch {
    // see above
  }
}
