import { RequestError, TimeoutError, type Msg } from '@nats-io/transport-node';
import type { Bus, BusHandler, BusResponder, Subscription } from '../../src/ports.ts';
import { answer, unwrapReply, type BusReply } from '../../src/protocol/bus-reply.ts';
import { decodeBusPacket, encodeBusPacket } from '../../src/protocol/cap-wire.ts';
import type { BusPacket } from '../../src/protocol/cap.ts';
import { asGatewayError, GatewayError } from '../../src/errors.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { NatsLink, type NatsConnectionOptions } from './connection.ts';
import { JobStream, messageIdOf, type JetStreamOptions } from './jetstream.ts';

export interface NatsBusOptions extends NatsConnectionOptions {
  /** Keep these subjects durable in a JetStream stream (distributed mode with `nats.jetstream: true`). */
  jetstream?: JetStreamOptions;
  /** Where dropped packets, failing handlers and connection changes are reported. Default: warnings on stderr. */
  log?: Logger;
}

const NOTHING: Subscription = { unsubscribe: () => undefined };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The Bus over NATS: packets travel as CAP protobuf bytes, request/reply bodies as JSON. While NATS is
 * unreachable, every call fails at once with GH_ERR_BUS_UNAVAILABLE (nothing is buffered to be sent later), and
 * service resumes by itself when it is back. With `jetstream`, the subjects it names are kept in a stream: see
 * `JobStream`.
 */
export class NatsBus implements Bus {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly link: NatsLink,
    private readonly stream: JobStream | undefined,
    private readonly log: Logger,
  ) {}

  /** Connects (and sets up the stream), or rejects with GH_ERR_BUS_UNAVAILABLE naming the endpoint. */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const log = options.log ?? createLogger('warn');
    const link = await NatsLink.connect(options, log);
    try {
      const stream = options.jetstream ? await JobStream.open(link, options.jetstream, log) : undefined;
      return new NatsBus(link, stream, log);
    } catch (err) {
      await link.close();
      throw err;
    }
  }

  /** Whether the connection is up now (it reconnects by itself): what a health check reports. */
  get connected(): boolean {
    return this.link.connected;
  }

  async publish(subject: string, packet: BusPacket): Promise<void> {
    if (this.closing) return;
    const bytes = encodeBusPacket(packet);
    this.link.assertUp(`publishing on ${subject}`);
    if (this.stream?.keeps(subject)) return this.stream.publish(subject, bytes, messageIdOf(subject, packet));
    try {
      this.link.nc.publish(subject, bytes);
    } catch (err) {
      throw this.link.failure(`publishing on ${subject}`, err);
    }
  }

  subscribe(subject: string, handler: BusHandler, options: { queue?: string } = {}): Subscription {
    if (this.closing) return NOTHING;
    const deliver = (data: Uint8Array, on: string): unknown => {
      const packet = this.decode(data, on);
      return packet && handler(packet, on);
    };
    // A core queue subscriber would also get the kept messages, so there the consumer is the only way in.
    if (options.queue && this.stream?.keeps(subject)) return this.stream.consume(subject, options.queue, deliver);
    return this.listen(subject, options.queue, (msg) => {
      try {
        void Promise.resolve(deliver(msg.data, msg.subject)).catch((err: unknown) => this.handlerFailed(msg.subject, err));
      } catch (err) {
        this.handlerFailed(msg.subject, err);
      }
    });
  }

  async request(subject: string, body: unknown, options: { timeoutMs: number; signal?: AbortSignal }): Promise<unknown> {
    if (this.closing) throw new GatewayError('GH_ERR_UPSTREAM_UNAVAILABLE', `nobody answers on ${subject}: the bus is closed`);
    const cancelled = () => new GatewayError('GH_ERR_CANCELLED', `the request on ${subject} was cancelled`);
    if (options.signal?.aborted) throw cancelled();
    this.link.assertUp(`a request on ${subject}`);
    const pending = this.link.nc.request(subject, toJson(body, subject), { timeout: options.timeoutMs });
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(cancelled());
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const reply = await Promise.race([pending, aborted]);
      return unwrapReply(fromJson(reply.data, subject), subject);
    } catch (err) {
      throw this.requestFailure(err, subject, options.timeoutMs);
    } finally {
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
      // A request given up on (cancelled) still settles later inside nats.js.
      pending.catch(() => undefined);
    }
  }

  reply(subject: string, handler: BusResponder, options: { queue?: string } = {}): Subscription {
    if (this.closing) return NOTHING;
    return this.listen(subject, options.queue, (msg) => void this.respond(msg, handler));
  }

  /** Stops the durable consumers, then drains the connection; idempotent. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await this.stream?.close();
      await this.link.close();
    })());
  }

  /** A core subscription whose callback never throws into nats.js. */
  private listen(subject: string, queue: string | undefined, onMessage: (msg: Msg) => void): Subscription {
    const sub = this.link.nc.subscribe(subject, {
      ...(queue ? { queue } : {}),
      callback: (err, msg) => {
        if (err) this.log.warn(`the subscription to ${subject} failed`, { error: err.message });
        else onMessage(msg);
      },
    });
    return { unsubscribe: () => void (sub.isClosed() ? undefined : sub.unsubscribe()) };
  }

  private async respond(msg: Msg, handler: BusResponder): Promise<void> {
    let reply: BusReply;
    try {
      reply = await answer(handler, fromJson(msg.data, msg.subject), msg.subject);
      msg.respond(toJson(reply, msg.subject));
    } catch (err) {
      // The body or the answer is not JSON: the requester still gets a coded error rather than a timeout.
      const error = asGatewayError(err);
      reply = { error: { code: error.code, message: error.message } };
      try {
        msg.respond(toJson(reply, msg.subject));
      } catch (lost) {
        this.log.warn(`could not answer a request on ${msg.subject}`, { error: (lost as Error).message });
      }
    }
  }

  private decode(data: Uint8Array, subject: string): BusPacket | undefined {
    try {
      return decodeBusPacket(data);
    } catch (err) {
      this.log.warn(`dropped a message on ${subject} that is not a CAP packet`, { bytes: data.length, error: (err as Error).message });
      return undefined;
    }
  }

  private handlerFailed(subject: string, err: unknown): void {
    this.log.warn(`a handler failed on ${subject}`, { error: err instanceof Error ? err.message : String(err) });
  }

  private requestFailure(err: unknown, subject: string, timeoutMs: number): GatewayError {
    if (err instanceof GatewayError) return err;
    if (err instanceof RequestError && err.isNoResponders()) return new GatewayError('GH_ERR_UPSTREAM_UNAVAILABLE', `nobody answers on ${subject}`, { cause: err });
    if (err instanceof TimeoutError) return new GatewayError('GH_ERR_UPSTREAM_TIMEOUT', `no answer on ${subject} within ${timeoutMs} ms`, { cause: err });
    return this.link.failure(`a request on ${subject}`, err);
  }
}

function toJson(value: unknown, subject: string): Uint8Array {
  try {
    return encoder.encode(JSON.stringify(value ?? null));
  } catch (err) {
    throw new GatewayError('GH_ERR_WIRE_INVALID', `a body on ${subject} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

function fromJson(data: Uint8Array, subject: string): unknown {
  try {
    return JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new GatewayError('GH_ERR_WIRE_INVALID', `a body on ${subject} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}
