// The reproduction from issue #10: a durable queue with x-message-ttl and a dead-letter
// exchange, and one persistent message whose headers cannot be decoded. It used to be
// confirmed; when its TTL fired, dead-lettering decoded the properties inside the timer and
// the process exited, and every restart decoded it again and exited the same way. Now it is
// refused at publish, as RabbitMQ refuses it, so it never reaches the queue, the store, a
// timer or recovery. The same for a truncated string and a table nested 5,000 deep.
import type { ChannelModel } from 'amqplib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { Vhost } from '../../src/vhost/vhost.js';
import { FrameType, M, RawClient, args, basicPublishArgs, decodeClose, encodeBody, encodeFrame, encodeMethod, isMethod } from '../../conformance/support/raw-client.js';
import type { Close } from '../../conformance/support/closes.js';
import { LogCapture } from '../robustness/log-capture.js';
import { childBrokerFixture, openChannel, openConfirmChannel, openConnection, TEST_TIMEOUT } from './harness.js';

const SOURCE = 'poison.source';
const DEAD = 'poison.dead';
const DLX = 'poison.dlx';
const TTL_MS = 100;

/** Persistent-message properties (delivery-mode 2) with a headers table of these entry bytes. */
function persistentWithHeaders(entries: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(entries.length);
  return Buffer.concat([Buffer.from([0x30, 0x00]), len, entries, Buffer.from([2])]);
}

/** Entries of one header "k" holding tables nested `levels` deep. */
function nested(levels: number): Buffer {
  let inner = Buffer.alloc(0);
  for (let i = 0; i < levels; i++) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(inner.length);
    inner = Buffer.concat([Buffer.from([1, 0x6b, 0x46]), len, inner]);
  }
  return inner;
}

const POISONS: [string, Buffer, 'connection' | 'channel'][] = [
  ['a field with an unknown type tag (three bytes)', Buffer.from([0x01, 0x6b, 0x5a]), 'connection'],
  ['a truncated string', Buffer.from([0x01, 0x6b, 0x53, 0x00, 0x00, 0x00, 0x09, 0x61, 0x62]), 'connection'],
  ['a table nested 5,000 deep', nested(5000), 'channel'],
];

/**
 * Publishes one message with these properties on a confirm channel of a raw connection;
 * resolves with the close the broker answers (connection or channel), failing on a confirm.
 */
async function publishPoison(url: string, properties: Buffer): Promise<{ level: 'connection' | 'channel'; close: Close }> {
  const { client } = await RawClient.open(url);
  try {
    await client.openChannel(1);
    client.sendMethod(1, [85, 10], args().bits(false).toBuffer()); // confirm.select
    await client.expectMethod([85, 11]);
    const header = args().short(60).short(0).longlong(1n).raw(properties).toBuffer();
    client.write(Buffer.concat([encodeMethod(1, M.BasicPublish, basicPublishArgs('', SOURCE)), encodeFrame(FrameType.Header, 1, header), encodeBody(1, Buffer.from('x'))]));
    const m = await client.nextMethod();
    if (isMethod(m, M.ConnectionClose)) return { level: 'connection', close: decodeClose(m) };
    if (isMethod(m, M.ChannelClose)) return { level: 'channel', close: decodeClose(m) };
    throw new Error(`the poison message got ${m.classId}.${m.methodId} (basic.ack is 60.80) instead of a close`);
  } finally {
    client.destroy();
  }
}

/** `ttl`: the source queue's x-message-ttl; the reject tests go without, so the message cannot expire before it is rejected. */
async function declareTopology(conn: ChannelModel, ttl: number | null = TTL_MS): Promise<void> {
  const ch = await openChannel(conn);
  await ch.assertExchange(DLX, 'fanout', { durable: true });
  await ch.assertQueue(DEAD, { durable: true });
  await ch.bindQueue(DEAD, DLX, '');
  const ttlArg = ttl === null ? {} : { 'x-message-ttl': ttl };
  await ch.assertQueue(SOURCE, { durable: true, arguments: { ...ttlArg, 'x-dead-letter-exchange': DLX } });
  await ch.close();
}

/** The first message that reaches `queue` (the TTL timer moves it there), consumed with no-ack. */
async function firstMessage(conn: ChannelModel, queue: string): Promise<string> {
  const ch = await openChannel(conn);
  const body = await new Promise<string>((resolve) => {
    void ch.consume(queue, (m) => m !== null && resolve(m.content.toString()), { noAck: true });
  });
  // a no-ack delivery's removal goes to the store after the delivery: a durable declare's
  // -ok waits for a group commit at least as late, so a crash after this cannot bring it back
  await ch.assertQueue('poison.sync', { durable: true });
  await ch.close();
  return body;
}

describe('a poison message (issue #10)', () => {
  const fixture = childBrokerFixture();

  it(
    'is refused at publish, never confirmed; the TTL timer, dead-lettering and restarts carry on',
    async () => {
      await fixture.start();
      await declareTopology(await fixture.connect());

      for (const [name, entries, level] of POISONS) {
        const { level: got, close } = await publishPoison(fixture.warren.url, persistentWithHeaders(entries));
        if (level === 'connection') {
          expect({ got, close }, name).toEqual({ got: 'connection', close: { code: 541, text: 'INTERNAL_ERROR', method: [0, 0] } });
        } else {
          expect({ got, close: close.code }, name).toEqual({ got: 'channel', close: 406 });
        }
      }

      // a good message with the same TTL still expires and is dead-lettered: the timer runs
      const conn = await fixture.connect();
      const ch = await openConfirmChannel(conn);
      ch.sendToQueue(SOURCE, Buffer.from('good'), { persistent: true, headers: { nested: { a: [1, 'two', { b: null }] } } });
      await ch.waitForConfirms();
      expect(await firstMessage(conn, DEAD)).toBe('good');
      expect(fixture.warren.process.exitCode).toBeNull();

      // and the broker restarts on its data dir (recovery meets no poison)
      await fixture.crashAndRestart();
      const after = await fixture.connect();
      const check = await openChannel(after);
      expect((await check.checkQueue(SOURCE)).messageCount).toBe(0);
      expect((await check.checkQueue(DEAD)).messageCount).toBe(0);
      expect(fixture.warren.output.filter((l) => l.includes('"level":50') || l.includes('"level":60'))).toEqual([]);
    },
    TEST_TIMEOUT * 2,
  );
});

describe('a dead-letter consumer rejecting a message (issue #10)', () => {
  let broker: RunningBroker | null = null;
  afterEach(async () => {
    vi.restoreAllMocks();
    await broker?.close();
    broker = null;
  });

  it('the rejected message moves to the dead-letter queue and the consumer stays connected', async () => {
    broker = await startBroker({ port: 0 });
    const conn = await openConnection(broker.url);
    await declareTopology(conn, null);
    const pub = await openConfirmChannel(conn);
    pub.sendToQueue(SOURCE, Buffer.from('reject me'), { persistent: true, headers: { deep: { a: [{ b: [-1, 2.5, Buffer.from([0xff]), 2 ** 40] }] }, 'x-number': 7 } });
    await pub.waitForConfirms();

    const consumer = await openConnection(broker.url);
    const ch = await openChannel(consumer);
    const delivered = new Promise<void>((resolve) => {
      void ch.consume(SOURCE, (m) => {
        if (m === null) return;
        ch.reject(m, false);
        resolve();
      });
    });
    await delivered;
    expect(await firstMessage(conn, DEAD)).toBe('reject me');
    // the consumer's connection is still usable, and the source queue is empty
    expect((await ch.checkQueue(SOURCE)).messageCount).toBe(0);
    await consumer.close();
    await conn.close();
  });

  it('when dead-lettering itself fails, the error is logged, the message leaves its queue and the consumer stays connected', async () => {
    const log = new LogCapture();
    broker = await startBroker({ port: 0, logger: log.logger });
    const conn = await openConnection(broker.url);
    await declareTopology(conn, null);
    const pub = await openConfirmChannel(conn);
    pub.sendToQueue(SOURCE, Buffer.from('reject me'), { persistent: true });
    await pub.waitForConfirms();
    vi.spyOn(Vhost.prototype as unknown as { deadLetterNow: () => void }, 'deadLetterNow').mockImplementation(() => {
      throw new Error('planted failure');
    });

    const consumer = await openConnection(broker.url);
    const ch = await openChannel(consumer);
    await new Promise<void>((resolve) => {
      void ch.consume(SOURCE, (m) => {
        if (m === null) return;
        ch.reject(m, false);
        resolve();
      });
    });
    const line = await log.waitFor((l) => l.level >= 50);
    expect(line).toMatchObject({ msg: 'dead-lettering failed: message dropped', queue: SOURCE, reason: 'rejected' });
    expect((await ch.checkQueue(SOURCE)).messageCount).toBe(0);
    expect((await ch.checkQueue(DEAD)).messageCount).toBe(0);
    await consumer.close();
    await conn.close();
  });
});
