// A persistent message routed to several durable queues is stored once. These tests
// check, on the data directory itself, that its body goes when the last queue lets go
// of it, also when one of the queues is deleted with part of its backlog paged out, or
// refused the message (x-overflow reject-publish).
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/index.js';
import { kindRange, Prefix } from '../../src/store/keys.js';
import { openConfirmChannel, openConnection, removeDir, tempDataDir, TEST_TIMEOUT } from './harness.js';

/** Small, so a modest backlog is mostly paged out to the store. */
const WINDOW = 20;
const COUNT = 200;

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeDir(d);
});

async function storedBodies(dataDir: string): Promise<number> {
  const db = new Level<Buffer, Buffer>(dataDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    return (await db.keys(kindRange(Prefix.Message)).all()).length;
  } finally {
    await db.close();
  }
}

async function publishConfirmed(ch: ConfirmChannel, exchange: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) ch.publish(exchange, '', Buffer.from(`m${i}`), { persistent: true });
  await ch.waitForConfirms();
}

/** Consumes and acks every message of `queue`; returns how many. */
async function drain(conn: ChannelModel, queue: string, expected: number): Promise<number> {
  const ch = await conn.createChannel();
  await ch.prefetch(50);
  let got = 0;
  await new Promise<void>((resolve) => {
    void ch.consume(queue, (msg) => {
      if (msg === null) return;
      ch.ack(msg);
      if (++got === expected) resolve();
    });
  });
  await ch.close(); // a round trip: the acks before it were handled
  return got;
}

/** Durable queues 'keep' and 'drop' behind a fanout, holding COUNT confirmed persistent messages. */
async function fanoutToKeepAndDrop(conn: ChannelModel): Promise<ConfirmChannel> {
  const ch = await openConfirmChannel(conn);
  await ch.assertExchange('fan', 'fanout', { durable: true });
  for (const q of ['keep', 'drop']) {
    await ch.assertQueue(q, { durable: true });
    await ch.bindQueue(q, 'fan', '');
  }
  await publishConfirmed(ch, 'fan', COUNT);
  return ch;
}

describe('shared message bodies are freed with their last holder', () => {
  it('a deleted queue with a paged-out backlog releases its share', async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const broker = await startBroker({ dataDir, port: 0, queueMemoryWindow: WINDOW });
    const conn = await openConnection(broker.url);
    const ch = await fanoutToKeepAndDrop(conn);
    expect((await ch.checkQueue('drop')).messageCount).toBe(COUNT);
    await ch.deleteQueue('drop');
    expect(await drain(conn, 'keep', COUNT)).toBe(COUNT);
    await conn.close();
    await broker.close();
    expect(await storedBodies(dataDir)).toBe(0);
  }, TEST_TIMEOUT);

  it('the other holder keeps the body: after the delete (with unacked deliveries acked late) and a restart it is still delivered', async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    let broker = await startBroker({ dataDir, port: 0, queueMemoryWindow: WINDOW });
    let conn = await openConnection(broker.url);
    const ch = await fanoutToKeepAndDrop(conn);
    // some of 'drop' are delivered and unacked when it is deleted; their acks come after
    const consumer = await conn.createChannel();
    await consumer.prefetch(10);
    const unacked: import('amqplib').ConsumeMessage[] = [];
    await new Promise<void>((resolve) => {
      void consumer.consume('drop', (msg) => {
        if (msg !== null && unacked.push(msg) === 10) resolve();
      });
    });
    await ch.deleteQueue('drop');
    for (const msg of unacked) consumer.ack(msg);
    await consumer.close();
    await conn.close();
    await broker.close();
    broker = await startBroker({ dataDir, port: 0, queueMemoryWindow: WINDOW });
    conn = await openConnection(broker.url);
    expect(await drain(conn, 'keep', COUNT)).toBe(COUNT);
    await conn.close();
    await broker.close();
    expect(await storedBodies(dataDir)).toBe(0);
  }, TEST_TIMEOUT);

  it('a queue that refused the message (reject-publish) holds no share of it', async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const broker = await startBroker({ dataDir, port: 0, queueMemoryWindow: WINDOW });
    const conn = await openConnection(broker.url);
    const ch = await openConfirmChannel(conn);
    await ch.assertExchange('fan', 'fanout', { durable: true });
    await ch.assertQueue('keep', { durable: true });
    await ch.assertQueue('full', { durable: true, arguments: { 'x-max-length': 5, 'x-overflow': 'reject-publish' } });
    await ch.bindQueue('keep', 'fan', '');
    await ch.bindQueue('full', 'fan', '');
    // RabbitMQ nacks a publish that any queue refused; the 'keep' copies are stored all the same
    for (let i = 0; i < 50; i++) ch.publish('fan', '', Buffer.from(`m${i}`), { persistent: true });
    await ch.waitForConfirms().catch(() => {});
    expect(await drain(conn, 'keep', 50)).toBe(50);
    expect(await drain(conn, 'full', 5)).toBe(5);
    await conn.close();
    await broker.close();
    expect(await storedBodies(dataDir)).toBe(0);
  }, TEST_TIMEOUT);
});
