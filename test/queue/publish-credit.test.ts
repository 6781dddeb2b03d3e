// Publisher flow control per queue (RabbitMQ's credit flow, at the granularity of a delivery
// pass): what publishers add to a queue with consumers between two of its delivery passes is
// bounded; past it, the publishing connection is not read until the queue's next pass. These
// tests count, they never time: a consumer gets its share while a producer floods, a held
// publisher is resumed, and a connection that publishes and consumes on itself keeps going.
import amqp, { type ChannelModel } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker.js';
import { resolveConfig } from '../../src/config/config.js';
import type { Connection } from '../../src/connection/connection.js';
import { createLogger } from '../../src/logging/logger.js';
import type { Queue } from '../../src/queue/queue.js';

describe('publisher credit (flow control per queue)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function start(): Promise<{ broker: Broker; url: string }> {
    const logger = createLogger('silent');
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: null, memoryHighWatermark: 0, diskFreeLimit: 0, managementPort: null, metricsPort: null, logLevel: 'silent' });
    const broker = new Broker(config, logger);
    const running = await broker.start();
    cleanups.push(() => running.close());
    return { broker, url: running.url };
  }

  async function connect(url: string): Promise<ChannelModel> {
    const c = await amqp.connect(url);
    c.on('error', () => {});
    cleanups.push(() => c.close());
    return c;
  }

  function queue(broker: Broker, name: string): Queue {
    return broker.core.vhosts.get('/')!.getQueue(name);
  }

  /** Counts the times a connection is held by a queue and resumed (flow control's transitions). */
  function watchFlow(conn: Connection): { held: number; resumed: number } {
    const seen = { held: 0, resumed: 0 };
    const enter = conn.enterQueueFlow.bind(conn);
    const resume = conn.resumeAfterCredit.bind(conn);
    conn.enterQueueFlow = (q) => {
      if (!conn.flow) seen.held++;
      enter(q);
    };
    conn.resumeAfterCredit = () => {
      // (reading again may hold it again at once: that is a new hold)
      if (conn.flow) seen.resumed++;
      resume();
    };
    return seen;
  }

  /** Calls `then` with the consumer's count at the moment the queue takes its `n`th publish. */
  function atPublish(q: Queue, n: number, then: () => void): void {
    const enqueue = q.enqueue.bind(q);
    let taken = 0;
    q.enqueue = (m) => {
      const r = enqueue(m);
      if (++taken === n) then();
      return r;
    };
  }

  it('a fast producer cannot starve a consumer: deliveries keep pace while it floods', async () => {
    const { broker, url } = await start();
    const consumerConn = await connect(url);
    const sub = await consumerConn.createChannel();
    await sub.assertQueue('credit.starve', { durable: false });
    const total = 60_000;
    let received = 0;
    const allIn = new Promise<void>((resolve) => {
      void sub.consume('credit.starve', () => {
        if (++received === total) resolve();
      }, { noAck: true });
    });
    let receivedWhenAllPublished = -1;
    atPublish(queue(broker, 'credit.starve'), total, () => (receivedWhenAllPublished = received));

    const producerConn = await connect(url);
    const pub = await producerConn.createChannel();
    const body = Buffer.alloc(16, 1);
    // never waits: everything is in the producer's socket at once
    for (let i = 0; i < total; i++) pub.sendToQueue('credit.starve', body);
    await allIn;
    // without flow control the broker takes the whole flood (tens of thousands of messages
    // per turn of the event loop) before the consumer's first few hundred deliveries; with
    // it the consumer is a few hundred behind. Half was not enough to tell: messages handed
    // straight to the consumer of an empty queue without using credit left it 15-39k behind
    // (the kernel's socket buffers hold them), and that passed more often than not.
    expect(receivedWhenAllPublished).toBeGreaterThan(total * 0.9);
    expect(received).toBe(total);
  }, 60_000);

  it('a held publisher is resumed when its queue catches up: everything arrives, and it ends running', async () => {
    const { broker, url } = await start();
    const consumerConn = await connect(url);
    const sub = await consumerConn.createChannel();
    await sub.assertQueue('credit.resume', { durable: false });
    // a consumer held by its prefetch, so that a backlog builds (one that can take every
    // message as it comes gets each at once: nothing queues, and nobody need be held)
    await sub.prefetch(100);
    const total = 20_000;
    let received = 0;
    const allIn = new Promise<void>((resolve) => {
      void sub.consume('credit.resume', (m) => {
        sub.ack(m!);
        if (++received === total) resolve();
      });
    });
    const producerConn = await connect(url);
    const pub = await producerConn.createConfirmChannel();
    await pub.checkQueue('credit.resume');
    const conn = [...broker.connectionList()].at(-1)!;
    const seen = watchFlow(conn);
    const body = Buffer.alloc(16, 2);
    for (let i = 0; i < total; i++) pub.sendToQueue('credit.resume', body);
    await pub.waitForConfirms();
    await allIn;
    expect(seen.held).toBeGreaterThan(0);
    expect(seen.resumed).toBe(seen.held);
    expect(conn.flow).toBe(false);
    expect(received).toBe(total);
  }, 60_000);

  it('a connection that publishes and consumes on itself never deadlocks, and its acks go through while it is held', async () => {
    const { broker, url } = await start();
    const c = await connect(url);
    const pub = await c.createConfirmChannel();
    const sub = await c.createChannel();
    await pub.assertQueue('credit.loop', { durable: false });
    await sub.prefetch(20);
    const conn = [...broker.connectionList()].at(-1)!;
    const seen = watchFlow(conn);
    const q = queue(broker, 'credit.loop');
    const total = 30_000;
    let acked = 0;
    let ackedWhenAllPublished = -1;
    atPublish(q, total, () => (ackedWhenAllPublished = q.stats.ack));
    const done = new Promise<void>((resolve) => {
      void sub.consume('credit.loop', (m) => {
        if (m === null) return;
        sub.ack(m);
        if (++acked === total) resolve();
      });
    });
    const body = Buffer.alloc(16, 3);
    // in rounds, so that the client's acks sit in its socket between its publishes
    for (let round = 0; round < 15; round++) {
      for (let i = 0; i < total / 15; i++) pub.sendToQueue('credit.loop', body);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await pub.waitForConfirms();
    await done;
    // held while it published, and its acks (behind publishes in the same socket) were
    // read between the holds: the broker had settled many before it took the last publish
    expect(seen.held).toBeGreaterThan(0);
    expect(ackedWhenAllPublished).toBeGreaterThan(0);
    expect(acked).toBe(total);
    // a round trip behind the last ack on the same channel: every ack has been handled
    expect((await sub.checkQueue('credit.loop')).messageCount).toBe(0);
    expect(conn.flow).toBe(false);
    expect(q.messageCount).toBe(0);
    expect(q.unackedCount).toBe(0);
  }, 60_000);

  it('a consumer that takes nothing (its prefetch full, never acking) does not stop the publisher: the backlog grows', async () => {
    const { broker, url } = await start();
    const consumerConn = await connect(url);
    const sub = await consumerConn.createChannel();
    await sub.assertQueue('credit.stuck', { durable: false });
    await sub.prefetch(10);
    let got = 0;
    const prefetchFull = new Promise<void>((resolve) => {
      void sub.consume('credit.stuck', () => {
        if (++got === 10) resolve();
      });
    });
    const producerConn = await connect(url);
    const pub = await producerConn.createConfirmChannel();
    await pub.checkQueue('credit.stuck');
    sub.sendToQueue('credit.stuck', Buffer.alloc(16, 4));
    for (let i = 0; i < 9; i++) sub.sendToQueue('credit.stuck', Buffer.alloc(16, 4));
    await prefetchFull;
    const conn = [...broker.connectionList()].at(-1)!;
    const seen = watchFlow(conn);
    const total = 20_000;
    const body = Buffer.alloc(16, 5);
    for (let i = 0; i < total; i++) pub.sendToQueue('credit.stuck', body);
    await pub.waitForConfirms();
    // a round trip on the producer's connection: it is read again, so it was resumed
    expect((await pub.checkQueue('credit.stuck')).messageCount).toBe(total);
    const q = queue(broker, 'credit.stuck');
    // held along the way (the consumer is behind), and resumed every time
    expect(seen.held).toBeGreaterThan(0);
    expect(seen.resumed).toBe(seen.held);
    expect(conn.flow).toBe(false);
    expect(q.messageCount).toBe(total);
    expect(q.unackedCount).toBe(10);
    expect(got).toBe(10);
  }, 60_000);
});
