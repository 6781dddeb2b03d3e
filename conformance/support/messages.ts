import type { Channel, ConfirmChannel, ConsumeMessage, GetMessage, Message, Options } from 'amqplib';
import { expect } from 'vitest';
import { withChannel } from './connections.js';

/** A basic.return as amqplib emits it ('return' on the channel); @types/amqplib lacks the reply fields. */
export interface ReturnedMessage extends Message {
  fields: Message['fields'] & { replyCode: number; replyText: string };
}

export const bodyOf = (m: Message | null | false): string => (m ? m.content.toString() : String(m));

/** Publishes on a confirm channel and resolves with the broker's verdict. */
export function publishConfirmed(
  ch: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: string,
  options: Options.Publish = {},
): Promise<'ack' | 'nack'> {
  return new Promise((resolve) => {
    ch.publish(exchange, routingKey, Buffer.from(body), options, (err) => resolve(err ? 'nack' : 'ack'));
  });
}

/** Drains a queue with basic.get (no-ack) and returns the bodies in order. */
export async function drain(ch: Channel, queue: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const msg = await ch.get(queue, { noAck: true });
    if (msg === false) return bodies;
    bodies.push(msg.content.toString());
  }
}

/** basic.get that must succeed. */
export async function getOne(ch: Channel, queue: string, options?: Options.Get): Promise<GetMessage> {
  const msg = await ch.get(queue, options);
  if (msg === false) throw new Error(`expected a message on ${queue}, got get-empty`);
  return msg;
}

/**
 * Round-trip barrier for "nothing else arrives": two sequential passive queue.declare calls
 * on the consuming channel. Whatever the broker had already decided to deliver on this
 * channel is on the wire before the second declare-ok (RabbitMQ: the queue's delivery
 * is queued at the channel before the stat reply; the second round trip flushes it).
 * Returns the queue's ready message count as seen by the second call.
 */
export async function settle(ch: Channel, queue: string): Promise<number> {
  await ch.checkQueue(queue);
  const ok = await ch.checkQueue(queue);
  return ok.messageCount;
}

/**
 * A consumer whose deliveries can be awaited one by one. `null` marks a server-sent
 * basic.cancel (amqplib calls the consumer callback with null).
 */
export class Inbox {
  readonly received: (ConsumeMessage | null)[] = [];
  private readonly waiters: { n: number; resolve: () => void }[] = [];
  consumerTag = '';

  readonly onMessage = (msg: ConsumeMessage | null): void => {
    this.received.push(msg);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (this.received.length >= w.n) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  };

  /** Resolves once at least `n` deliveries (in total) have arrived. */
  async untilCount(n: number): Promise<(ConsumeMessage | null)[]> {
    if (this.received.length < n) {
      await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
    }
    return this.received.slice(0, n);
  }

  /** Resolves with the delivery number `n` (1-based) once it has arrived. */
  async nth(n: number): Promise<ConsumeMessage | null> {
    await this.untilCount(n);
    return this.received[n - 1]!;
  }

  bodies(): string[] {
    return this.received.map((m) => (m === null ? '<cancel>' : m.content.toString()));
  }
}

/** basic.consume into an Inbox. */
export async function consumeInto(ch: Channel, queue: string, options?: Options.Consume): Promise<Inbox> {
  const inbox = new Inbox();
  const ok = await ch.consume(queue, inbox.onMessage, options);
  inbox.consumerTag = ok.consumerTag;
  return inbox;
}

/** Resolves with the next `n` messages consumed from queue (no-ack unless told otherwise), then cancels. */
export async function consumeN(ch: Channel, queue: string, n: number, options: Options.Consume = { noAck: true }): Promise<ConsumeMessage[]> {
  const inbox = await consumeInto(ch, queue, options);
  const got = n > 0 ? await inbox.untilCount(n) : [];
  await ch.cancel(inbox.consumerTag);
  return got.filter((m): m is ConsumeMessage => m !== null);
}

/**
 * Waits until `n` messages are ready in `queue` (on a connection of its own), takes them in
 * queue order and resolves with their [body, redelivered] pairs; fails if more are ready.
 * For messages the broker puts back asynchronously: RabbitMQ requeues a closed channel's
 * unacked deliveries after the close-ok, so a basic.get right after may find nothing yet.
 */
export async function takeWhenReady(queue: string, n: number): Promise<[string, boolean][]> {
  return withChannel(async (ch) => {
    await ch.prefetch(n);
    const inbox = await consumeInto(ch, queue, { noAck: false });
    const got = await inbox.untilCount(n);
    expect(await settle(ch, queue), `messages ready in ${queue} beyond the ${n} expected`).toBe(0);
    return got.map((m) => [bodyOf(m ?? false), m?.fields.redelivered ?? false]);
  });
}

/**
 * An exclusive, server-named queue with a no-ack consumer: where dead-lettered messages land,
 * so their arrival is an event the test can await.
 */
export async function sink(ch: Channel): Promise<{ queue: string; inbox: Inbox }> {
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const inbox = await consumeInto(ch, queue, { noAck: true });
  return { queue, inbox };
}

/**
 * Waits until the broker has let `ms` milliseconds pass, observed as a broker event: a message
 * with a per-queue TTL of `ms` is dead-lettered to a consumer. Used where the behaviour under
 * test has no event of its own (a message silently expiring in some other queue); messages
 * published before this call with a TTL ≤ `ms` are due by the time it resolves.
 */
export async function brokerClock(ch: Channel, ms: number): Promise<void> {
  const { queue, inbox } = await sink(ch);
  const { queue: timer } = await ch.assertQueue('', {
    exclusive: true,
    arguments: { 'x-message-ttl': ms, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
  });
  ch.sendToQueue(timer, Buffer.from('tick'));
  await inbox.untilCount(1);
  await ch.cancel(inbox.consumerTag);
  await ch.deleteQueue(timer);
  await ch.deleteQueue(queue);
}

/** The x-death header as amqplib decodes it (timestamps as { '!': 'timestamp', value }). */
export interface XDeath {
  count: number;
  reason: string;
  queue: string;
  time: { '!': 'timestamp'; value: number };
  exchange: string;
  'routing-keys': string[];
  'original-expiration'?: string;
}

export function xDeath(m: Message | null | false): XDeath[] {
  if (!m) throw new Error('expected a message');
  const headers = (m.properties.headers ?? {}) as Record<string, unknown>;
  return headers['x-death'] as XDeath[];
}

/** Seconds since the epoch, as an AMQP timestamp carries it. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
