import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelModel, Options } from 'amqplib';
import {
  cleanRestart,
  connectionClosed,
  killRestart,
  openChannel,
  openConfirmChannel,
  openConnection,
  patternBody,
  removeDir,
  startCapturingProxy,
  tempDataDir,
  TEST_TIMEOUT,
  type BrokerHandle,
  type CapturingProxy,
  type RestartMode,
} from './harness.js';

/** Every basic property amqplib can set, headers with nested tables, arrays and typed values. */
const RICH_PROPERTIES: Options.Publish = {
  persistent: true,
  contentType: 'application/x-warren-test',
  contentEncoding: 'identity',
  headers: {
    str: 'value',
    int: 42,
    negative: -7,
    big: 2 ** 40,
    float: 1.5,
    yes: true,
    nothing: null,
    bytes: Buffer.from([0, 1, 2, 255]),
    decimal: { '!': 'decimal', value: { places: 2, digits: 12345 } },
    stamp: { '!': 'timestamp', value: 1_700_000_000 },
    list: [1, 'two', [3, [4]], { five: 5 }],
    nested: { a: { b: { c: 'deep', arr: ['x', { y: 'z' }] } } },
  },
  priority: 5,
  correlationId: 'corr-1',
  replyTo: 'reply.queue',
  expiration: '86400000',
  messageId: 'msg-1',
  timestamp: 1_700_000_123,
  type: 'test.type',
  userId: 'guest',
  appId: 'warren-durability',
};

const BIG = 300 * 1024; // > frame_max (128 KiB by default, amqplib asks for less)

describe.each([cleanRestart, killRestart])('persistent messages: $name', (mode: RestartMode) => {
  let dataDir: string | undefined;
  let broker: BrokerHandle | undefined;
  const conns: ChannelModel[] = [];
  const proxies: CapturingProxy[] = [];

  afterEach(async () => {
    await closeClients();
    await broker?.stop();
    broker = undefined;
    if (dataDir !== undefined) await removeDir(dataDir);
    dataDir = undefined;
  });

  async function closeClients(): Promise<void> {
    for (const c of conns.splice(0)) await c.close().catch(() => {});
    for (const p of proxies.splice(0)) await p.close();
  }

  async function start(): Promise<void> {
    dataDir ??= await tempDataDir();
    broker = await mode.start(dataDir);
  }

  async function restart(settleOn: ChannelModel): Promise<void> {
    await mode.settle(settleOn);
    await broker!.stop();
    broker = undefined;
    // The broker took the connections down (320 or a dead socket); no client close handshake.
    await Promise.all(conns.splice(0).map(connectionClosed));
    await closeClients();
    await start();
  }

  async function connectTo(): Promise<ChannelModel> {
    const c = await openConnection(broker!.url);
    conns.push(c);
    return c;
  }

  async function proxied(): Promise<{ conn: ChannelModel; proxy: CapturingProxy }> {
    const proxy = await startCapturingProxy(broker!.port);
    proxies.push(proxy);
    const conn = await openConnection(proxy.url);
    conns.push(conn);
    return { conn, proxy };
  }

  it('survive in order with properties byte-exact and bodies intact; transient ones are dropped', async () => {
    await start();
    const { conn, proxy } = await proxied();
    const ch = await openConfirmChannel(conn);
    await ch.assertQueue('m.props', { durable: true });
    const small = Buffer.from('small body');
    const big = patternBody(BIG, 7);
    ch.sendToQueue('m.props', Buffer.alloc(0), RICH_PROPERTIES);
    ch.sendToQueue('m.props', small, { persistent: true, headers: { n: 2 } });
    ch.sendToQueue('m.props', Buffer.from('transient'), { deliveryMode: 1, headers: { n: 'transient' } });
    ch.sendToQueue('m.props', big, { ...RICH_PROPERTIES, messageId: 'big' });
    await ch.waitForConfirms();
    expect(proxy.published).toHaveLength(4);
    const published = [...proxy.published];

    await restart(conn);

    const after = await proxied();
    const ch2 = await openChannel(after.conn);
    expect((await ch2.assertQueue('m.props', { durable: true })).messageCount).toBe(3);
    const got = [];
    for (;;) {
      const m = await ch2.get('m.props', { noAck: true });
      if (m === false) break;
      got.push(m);
    }
    expect(got.map((m) => m.content.length)).toEqual([0, small.length, BIG]);
    expect(got[1]!.content.equals(small)).toBe(true);
    expect(got[2]!.content.equals(big)).toBe(true);
    // byte-exact: what the broker delivers is what the client published
    expect(after.proxy.delivered).toHaveLength(3);
    expect(after.proxy.delivered[0]!.equals(published[0]!)).toBe(true);
    expect(after.proxy.delivered[1]!.equals(published[1]!)).toBe(true);
    expect(after.proxy.delivered[2]!.equals(published[3]!)).toBe(true);
    // and a client decodes them as sent
    expect(got[0]!.properties).toMatchObject({
      contentType: RICH_PROPERTIES.contentType,
      correlationId: 'corr-1',
      messageId: 'msg-1',
      timestamp: 1_700_000_123,
      userId: 'guest',
      deliveryMode: 2,
      priority: 5,
      headers: { str: 'value', list: [1, 'two', [3, [4]], { five: 5 }], nested: { a: { b: { c: 'deep' } } } },
    });
  }, TEST_TIMEOUT);

  it('unacked messages come back ready and redelivered; acked ones never come back', async () => {
    await start();
    const conn = await connectTo();
    const pub = await openConfirmChannel(conn);
    await pub.assertQueue('m.acks', { durable: true });
    for (let n = 1; n <= 6; n++) pub.sendToQueue('m.acks', Buffer.from(String(n)), { persistent: true });
    await pub.waitForConfirms();
    const ch = await openChannel(conn);
    const delivered = [];
    for (let i = 0; i < 4; i++) {
      const m = await ch.get('m.acks');
      if (m === false) throw new Error('queue ran dry');
      delivered.push(m);
    }
    expect(delivered.map((m) => m.content.toString())).toEqual(['1', '2', '3', '4']);
    ch.ack(delivered[0]!);
    ch.ack(delivered[2]!);
    // 2 and 4 stay unacked when the broker goes down

    await restart(conn);

    const conn2 = await connectTo();
    const ch2 = await openChannel(conn2);
    expect((await ch2.checkQueue('m.acks')).messageCount).toBe(4);
    const seen: { body: string; redelivered: boolean }[] = [];
    for (;;) {
      const m = await ch2.get('m.acks', { noAck: true });
      if (m === false) break;
      seen.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
    }
    expect(seen.map((s) => s.body)).toEqual(['2', '4', '5', '6']);
    expect(seen.slice(0, 2)).toEqual([{ body: '2', redelivered: true }, { body: '4', redelivered: true }]);
    // RabbitMQ: messages never delivered come back with redelivered=false after a clean
    // shutdown; after a crash a broker may conservatively mark them, so only the clean case is pinned.
    if (mode === cleanRestart) expect(seen.slice(2)).toEqual([{ body: '5', redelivered: false }, { body: '6', redelivered: false }]);

    await restart(conn2); // the no-ack gets were acks too

    const conn3 = await connectTo();
    const ch3 = await openChannel(conn3);
    expect((await ch3.checkQueue('m.acks')).messageCount).toBe(0);
    expect(await ch3.get('m.acks')).toBe(false);
  }, TEST_TIMEOUT);

  it('a message routed to two durable queues survives in both; acking it in one keeps it in the other across another restart', async () => {
    await start();
    const { conn, proxy } = await proxied();
    const ch = await openConfirmChannel(conn);
    await ch.assertExchange('m.fan', 'fanout', { durable: true });
    for (const q of ['m.sh1', 'm.sh2']) {
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, 'm.fan', '');
    }
    const body = patternBody(BIG, 11);
    ch.publish('m.fan', '', body, RICH_PROPERTIES);
    await ch.waitForConfirms();
    const published = proxy.published[0]!;

    await restart(conn);

    const conn2 = await connectTo();
    const ch2 = await openChannel(conn2);
    expect((await ch2.checkQueue('m.sh1')).messageCount).toBe(1);
    expect((await ch2.checkQueue('m.sh2')).messageCount).toBe(1);
    const m1 = await ch2.get('m.sh1');
    if (m1 === false) throw new Error('m.sh1 is empty');
    expect(m1.content.equals(body)).toBe(true);
    ch2.ack(m1);

    await restart(conn2);

    const after = await proxied();
    const ch3 = await openChannel(after.conn);
    expect((await ch3.checkQueue('m.sh1')).messageCount).toBe(0);
    expect((await ch3.checkQueue('m.sh2')).messageCount).toBe(1);
    const m2 = await ch3.get('m.sh2', { noAck: true });
    if (m2 === false) throw new Error('m.sh2 is empty');
    expect(m2.content.equals(body)).toBe(true);
    expect(after.proxy.delivered[0]!.equals(published)).toBe(true);
  }, TEST_TIMEOUT);
});
