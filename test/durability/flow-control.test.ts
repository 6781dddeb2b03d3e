// Publisher flow control (RabbitMQ's connection state `flow`): while the store holds more
// than it has written, connections whose publishes write to it are not read; they resume
// when it catches up. The condition is the broker's own write-behind (it drains by itself),
// so a connection that both publishes and consumes is never deadlocked.
import amqp, { type ChannelModel } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker.js';
import { resolveConfig } from '../../src/config/config.js';
import { MESSAGE_OVERHEAD } from '../../src/connection/channel.js';
import { FLOW_ALLOWANCE, type Connection } from '../../src/connection/connection.js';
import { createLogger } from '../../src/logging/logger.js';
import type { Logger } from 'pino';
import { LevelStore, type LevelStoreOptions } from '../../src/store/level-store.js';
import { removeDir, tempDataDir } from './harness.js';

const KiB = 1024;

/** A store whose writes can be held (a slow disk, through the durable log's write seam), with small write-behind marks. */
class SlowDiskStore extends LevelStore {
  private gate: Promise<void> | null = null;
  private open_: (() => void) | null = null;
  writes = 0;

  constructor(dataDir: string, logger: Logger, options: LevelStoreOptions) {
    super(dataDir, logger, options);
    this.interceptWrites({
      write: async (ops, writeOptions, local) => {
        this.writes++;
        if (this.gate !== null) await this.gate;
        return local(ops, writeOptions);
      },
    });
  }

  hold(): void {
    this.gate = new Promise<void>((resolve) => (this.open_ = resolve));
  }

  release(): void {
    this.open_?.();
    this.gate = null;
  }
}

describe('publisher flow control', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function start(durable = { high: 256 * KiB, low: 64 * KiB }): Promise<{ broker: Broker; store: SlowDiskStore; url: string; connections: () => Connection[] }> {
    const dataDir = await tempDataDir();
    const logger = createLogger('silent');
    const store = new SlowDiskStore(dataDir, logger, { writeBehind: { durableHigh: durable.high, durableLow: durable.low, spillHigh: 256 * KiB, spillLow: 64 * KiB } });
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, memoryHighWatermark: 0, diskFreeLimit: 0, managementPort: null, metricsPort: null, logLevel: 'silent' });
    const broker = new Broker(config, logger, store);
    const running = await broker.start();
    cleanups.push(async () => {
      store.release();
      await running.close();
      await removeDir(dataDir);
    });
    return { broker, store, url: running.url, connections: () => [...broker.connectionList()] };
  }

  async function connect(url: string): Promise<ChannelModel> {
    const c = await amqp.connect(url);
    c.on('error', () => {});
    cleanups.push(() => c.close());
    return c;
  }

  it('a publisher is held while the store is behind, then resumes: everything arrives and every confirm comes', async () => {
    const { store, url, connections } = await start();
    const publisher = await connect(url);
    const ch = await publisher.createConfirmChannel();
    await ch.assertQueue('flow.q', { durable: true });
    const bystander = await connect(url);
    const other = await bystander.createChannel();

    store.hold(); // the disk stalls
    const body = Buffer.alloc(4 * KiB, 7);
    const confirms: Promise<void>[] = [];
    const sent = 400; // 1.6 MiB: far past the 256 KiB high mark
    for (let i = 0; i < sent; i++) {
      confirms.push(new Promise<void>((resolve, reject) => ch.sendToQueue('flow.q', body, { persistent: true }, (err) => (err ? reject(err) : resolve()))));
    }
    // the publisher's connection goes to flow: the broker stops reading it
    await until(() => connections().some((c) => c.flow));
    const held = connections().find((c) => c.flow)!;
    expect(held.flow).toBe(true);
    // a connection that did not write to the store is not held: a round trip on it completes
    expect((await other.checkQueue('flow.q')).queue).toBe('flow.q');
    expect(connections().filter((c) => c.flow)).toHaveLength(1);

    store.release(); // the disk catches up: the connection is read again
    await Promise.all(confirms);
    expect(held.flow).toBe(false);
    expect((await other.checkQueue('flow.q')).messageCount).toBe(sent);
  }, 30_000);

  it('a held publisher stops at the next frame, not at the end of what one socket read brought (thousands of small publishes)', async () => {
    // the store is past its mark from the first few messages: what the connection takes is
    // its own allowance, then at most the frame being handled
    const { store, url, connections } = await start({ high: 1 * KiB, low: 512 });
    const publisher = await connect(url);
    const ch = await publisher.createChannel();
    await ch.assertQueue('flow.small', { durable: true });
    const observer = await connect(url);
    const look = await observer.createChannel();

    store.hold(); // the disk stalls
    const body = Buffer.alloc(16, 7);
    const sent = 20_000; // ~2 MB on the wire: a socket read brings up to 256 KiB, some 2,500 publishes
    for (let i = 0; i < sent; i++) ch.sendToQueue('flow.small', body, { persistent: true });
    await until(() => connections().some((c) => c.flow));
    const taken = (await look.checkQueue('flow.small')).messageCount;
    const allowance = Math.ceil(FLOW_ALLOWANCE / (body.length + MESSAGE_OVERHEAD)); // 456
    // the few that filled the 1 KiB mark, the allowance, and the publish being handled
    expect(taken).toBeLessThanOrEqual(allowance + 16);
    expect(taken).toBeGreaterThanOrEqual(allowance);

    store.release();
    await until(() => !connections().some((c) => c.flow));
    await ch.close(); // amqplib sends what it buffered first
    expect((await look.checkQueue('flow.small')).messageCount).toBe(sent);
  }, 30_000);

  it('a light publisher on another queue is not held behind a flooding one: only the connection that filled the store waits', async () => {
    const { store, url, connections } = await start();
    const flooder = await connect(url);
    const flood = await flooder.createConfirmChannel();
    await flood.assertQueue('flow.flood', { durable: true });
    const light = await connect(url);
    const lightCh = await light.createConfirmChannel();
    await lightCh.assertQueue('flow.light', { durable: true });

    store.hold(); // the disk stalls
    const body = Buffer.alloc(4 * KiB, 7);
    for (let i = 0; i < 400; i++) flood.sendToQueue('flow.flood', body, { persistent: true });
    await until(() => connections().some((c) => c.flow));
    // the store is saturated; the light publisher sends a few small persistent messages, and
    // its connection is still read: a round trip on it completes and counts them
    const lightConfirms: Promise<void>[] = [];
    for (let i = 0; i < 5; i++) {
      lightConfirms.push(new Promise<void>((resolve, reject) => lightCh.sendToQueue('flow.light', Buffer.from(`light-${i}`), { persistent: true }, (err) => (err ? reject(err) : resolve()))));
    }
    expect((await lightCh.checkQueue('flow.light')).messageCount).toBe(5);
    expect(connections().filter((c) => c.flow)).toHaveLength(1);

    store.release();
    await Promise.all(lightConfirms);
    await flood.waitForConfirms();
    expect((await lightCh.checkQueue('flow.flood')).messageCount).toBe(400);
  }, 30_000);

  it('a connection that publishes and consumes on itself is never deadlocked, and its acks go through', async () => {
    const { store, url, connections } = await start();
    const conn = await connect(url);
    const pub = await conn.createConfirmChannel();
    const sub = await conn.createChannel();
    await pub.assertQueue('flow.loop', { durable: true });
    await sub.prefetch(50);
    const total = 600;
    let acked = 0;
    const done = new Promise<void>((resolve) => {
      void sub.consume('flow.loop', (m) => {
        if (m === null) return;
        sub.ack(m);
        if (++acked === total) resolve();
      });
    });
    const body = Buffer.alloc(4 * KiB, 1);
    // the disk stalls and recovers in turns while the connection publishes and consumes:
    // each time it goes to flow (its acks wait in the socket with its publishes), then resumes
    for (let round = 0; round < total / 150; round++) {
      store.hold();
      for (let i = 0; i < 150; i++) pub.sendToQueue('flow.loop', body, { persistent: true });
      await until(() => connections().some((c) => c.flow));
      store.release();
    }
    store.release();
    await pub.waitForConfirms();
    await done;
    expect(acked).toBe(total);
    await until(() => connections().every((c) => !c.flow));
    expect((await pub.checkQueue('flow.loop')).messageCount).toBe(0);
  }, 30_000);

  it('large persistent messages that a no-ack consumer takes before their commit never leave the publisher held', async () => {
    const { url, connections } = await start();
    const publisher = await connect(url);
    const pub = await publisher.createChannel();
    await pub.assertQueue('flow.cancelled', { durable: true });
    const consumer = await connect(url);
    const sub = await consumer.createChannel();
    const total = 400;
    let received = 0;
    const all = new Promise<void>((resolve) => {
      void sub.consume('flow.cancelled', () => {
        if (++received === total) resolve();
      }, { noAck: true });
    });
    // 25 MiB in all, 64 KiB each: a window's worth is far past the 256 KiB high mark, and
    // most of it is delivered (its store operations cancel out) before it is written
    const body = Buffer.alloc(64 * KiB, 7);
    for (let i = 0; i < total; i++) pub.sendToQueue('flow.cancelled', body, { persistent: true });
    await all;
    expect(received).toBe(total);
    await until(() => connections().every((c) => !c.flow));
  }, 30_000);
});

/** Polls a condition that an event in another process (the broker's reads) makes true. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('publisher confirms around store operations that cancel out', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it('a persistent message dropped on arrival is confirmed at once; the next one, published in the same read, only once its batch is written', async () => {
    const dataDir = await tempDataDir();
    const logger = createLogger('silent');
    const store = new SlowDiskStore(dataDir, logger, {});
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, memoryHighWatermark: 0, diskFreeLimit: 0, managementPort: null, metricsPort: null, logLevel: 'silent' });
    const running = await new Broker(config, logger, store).start();
    cleanups.push(async () => {
      store.release();
      await running.close();
      await removeDir(dataDir);
    });
    const conn = await amqp.connect(running.url);
    conn.on('error', () => {});
    cleanups.push(() => conn.close());
    const ch = await conn.createConfirmChannel();
    // a durable queue that keeps nothing: a message stored in it is dropped at once (its store write cancels out)
    await ch.assertQueue('cancel.nothing', { durable: true, arguments: { 'x-max-length': 0 } });
    await ch.assertQueue('cancel.kept', { durable: true });

    store.hold(); // nothing reaches the disk until released
    const confirmed: string[] = [];
    const dropped = new Promise<void>((resolve, reject) => {
      ch.sendToQueue('cancel.nothing', Buffer.from('a'), { persistent: true }, (err) => (err ? reject(err) : (confirmed.push('dropped'), resolve())));
    });
    const kept = new Promise<void>((resolve, reject) => {
      ch.sendToQueue('cancel.kept', Buffer.from('b'), { persistent: true }, (err) => (err ? reject(err) : (confirmed.push('kept'), resolve())));
    });
    await dropped;
    // replies on a channel come in order: a confirm sent with the publishes comes before this
    await ch.checkQueue('cancel.kept');
    expect(confirmed).toEqual(['dropped']);
    store.release();
    await kept;
    expect(confirmed).toEqual(['dropped', 'kept']);
    expect((await ch.checkQueue('cancel.kept')).messageCount).toBe(1);
  });
});
