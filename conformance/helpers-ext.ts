import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import { connect, openChannel, uniqueName } from './helpers.js';
import { expect } from 'vitest';
import { expectChannelError } from './helpers-a.js';
import { consumeInto, type Inbox } from './helpers-b.js';

/**
 * Owns one admin connection per test file and deletes every queue/exchange declared through
 * it (or registered with it) after each test, so tests run in parallel and repeatedly.
 */
export class Scope {
  conn!: ChannelModel;
  ch!: Channel;
  private queues: string[] = [];
  private exchanges: string[] = [];
  private connections: ChannelModel[] = [];

  async open(): Promise<void> {
    this.conn = await connect();
    this.ch = await openChannel(this.conn);
  }

  /** A fresh connection closed after the test. */
  async connection(): Promise<ChannelModel> {
    const conn = await connect();
    this.connections.push(conn);
    return conn;
  }

  async channel(): Promise<Channel> {
    return openChannel(await this.connection());
  }

  /** A named, non-durable queue (not exclusive, so other connections may use it), deleted after the test. */
  async queue(prefix: string, args: Record<string, unknown> = {}): Promise<string> {
    const name = uniqueName(prefix);
    await this.ch.assertQueue(name, { durable: false, arguments: args });
    this.queues.push(name);
    return name;
  }

  /** Registers a queue declared elsewhere for deletion. */
  trackQueue(name: string): void {
    this.queues.push(name);
  }

  async exchange(prefix: string, type: string, args: Record<string, unknown> = {}): Promise<string> {
    const name = uniqueName(prefix);
    await this.ch.assertExchange(name, type, { durable: false, arguments: args });
    this.exchanges.push(name);
    return name;
  }

  /**
   * queue.declare of a fresh queue with `args` must be refused with the 406 RabbitMQ
   * answers (a channel error naming queue.declare, 50/10); `text` gets the queue name.
   */
  async expectDeclareRefused(args: Record<string, unknown>, text: (q: string) => string): Promise<void> {
    const conn = await this.connection();
    const ch = await openChannel(conn);
    const q = uniqueName('bad-arg');
    const err = await expectChannelError(conn, ch, () => ch.assertQueue(q, { durable: false, arguments: args }), 406, text(q));
    expect([err.classId, err.methodId]).toEqual([50, 10]);
  }

  /** As expectDeclareRefused, for one bad argument: "invalid arg '<arg>' for queue '<q>' in vhost '/': <detail>". */
  expectInvalidArg(arg: string, value: unknown, detail: string): Promise<void> {
    return this.expectDeclareRefused({ [arg]: value }, (q) => `PRECONDITION_FAILED - invalid arg '${arg}' for queue '${q}' in vhost '/': ${detail}`);
  }

  trackExchange(name: string): void {
    this.exchanges.push(name);
  }

  async cleanup(): Promise<void> {
    while (this.connections.length > 0) await this.connections.pop()!.close().catch(() => {});
    // a test that provoked a channel error may have left the admin channel closed
    const ch = await openChannel(this.conn);
    while (this.queues.length > 0) await ch.deleteQueue(this.queues.pop()!);
    while (this.exchanges.length > 0) await ch.deleteExchange(this.exchanges.pop()!);
    await ch.close();
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => {});
  }
}

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

export const bodyOf = (m: Message | null | false): string => (m ? m.content.toString() : String(m));

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
