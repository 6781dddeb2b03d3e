// No timer, socket event, store callback or promise continuation may let an exception
// escape: it would end the process and every connection with it. Each case plants a
// throwing path in one of them (a spy on the method it calls) and shows that the broker
// logs the error with its context, keeps running, and serves a healthy client; where the
// failing code belongs to one connection, only that connection is closed.
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Broker, type RunningBroker } from '../../src/broker.js';
import { ResourceMonitor } from '../../src/alarms/resource-monitor.js';
import { resolveConfig } from '../../src/config/config.js';
import { Channel } from '../../src/connection/channel.js';
import { Connection } from '../../src/connection/connection.js';
import { Vhost } from '../../src/vhost/vhost.js';
import { LogCapture, type LogLine } from './log-capture.js';

const planted = (): never => {
  throw new Error('planted failure');
};

let log: LogCapture;
let broker: RunningBroker;
let memoryUsed = 0;
let monitor: ResourceMonitor;
const escaped: unknown[] = [];
const onEscape = (e: unknown): void => {
  escaped.push(e);
};
const conns: ChannelModel[] = [];

beforeAll(async () => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  log = new LogCapture();
  // a monitor the test drives (no timer): memory readings come from `memoryUsed`
  monitor = new ResourceMonitor({ memoryHighWatermark: { absolute: 1000 }, readMemory: () => memoryUsed, intervalMs: 3_600_000 });
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: null, logLevel: 'info', managementPort: null, metricsPort: null });
  broker = await new Broker(config, log.logger, undefined, monitor).start();
});

afterAll(async () => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  await broker?.close();
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of conns.splice(0)) await c.close().catch(() => {});
  expect(escaped, 'exceptions that escaped to the event loop').toEqual([]);
});

async function open(url = broker.url): Promise<ChannelModel> {
  const c = await connect(url);
  c.on('error', () => {});
  conns.push(c);
  return c;
}

/** A fresh client declares, publishes and gets a message: the broker is serving. */
async function healthy(): Promise<void> {
  const c = await open();
  const ch = await c.createConfirmChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  ch.sendToQueue(queue, Buffer.from('still here'));
  await ch.waitForConfirms();
  const m = await ch.get(queue, { noAck: true });
  expect(m && m.content.toString()).toBe('still here');
}

const contained = (during: string) => (l: LogLine): boolean => l.level >= 50 && l.during === during;

/** Resolves with the close error of an amqplib connection. */
function closedWith(c: ChannelModel): Promise<{ code?: number; message: string }> {
  return new Promise((resolve) => c.once('close', (err: { code?: number; message: string }) => resolve(err)));
}

describe('exceptions in callbacks are contained', () => {
  it('message TTL timer: logged with the queue; the next message still expires and is dead-lettered', async () => {
    const spy = vi.spyOn(Vhost.prototype, 'deadLetter').mockImplementationOnce(planted);
    const c = await open();
    const ch = await c.createChannel();
    const dlq = (await ch.assertQueue('', { exclusive: true })).queue;
    const { queue } = await ch.assertQueue('', { exclusive: true, arguments: { 'x-message-ttl': 20, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
    ch.sendToQueue(queue, Buffer.from('first'));
    ch.sendToQueue(queue, Buffer.from('second'));
    const line = await log.waitFor(contained('message TTL timer'));
    expect(line).toMatchObject({ queue, err: { message: 'planted failure' } });
    // the second message reaches the dead-letter queue
    let m = await ch.get(dlq, { noAck: true });
    while (m === false) {
      await new Promise((r) => setImmediate(r));
      m = await ch.get(dlq, { noAck: true });
    }
    expect(m.content.toString()).toBe('second');
    expect(spy).toHaveBeenCalledTimes(2);
    await healthy();
  });

  it('x-expires timer: logged with the queue', async () => {
    vi.spyOn(Vhost.prototype, 'queueUnused').mockImplementationOnce(planted);
    const c = await open();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('', { arguments: { 'x-expires': 20 } });
    expect(await log.waitFor(contained('x-expires timer'))).toMatchObject({ queue });
    await ch.deleteQueue(queue);
    await healthy();
  });

  it('delivery pass: logged with the queue; later messages are delivered', async () => {
    vi.spyOn(Channel.prototype, 'deliver').mockImplementationOnce(planted);
    const c = await open();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const got: string[] = [];
    const second = new Promise<void>((resolve) => {
      void ch.consume(queue, (m) => {
        if (m !== null) got.push(m.content.toString());
        if (got.length === 1) resolve();
      }, { noAck: true });
    });
    ch.sendToQueue(queue, Buffer.from('lost to the planted failure'));
    expect(await log.waitFor(contained('delivery pass'))).toMatchObject({ queue });
    ch.sendToQueue(queue, Buffer.from('delivered'));
    await second;
    expect(got).toEqual(['delivered']);
    await healthy();
  });

  it('delayed exchange timer: logged with the exchange; the next delayed message is routed', async () => {
    vi.spyOn(Vhost.prototype, 'routeDelayed').mockImplementationOnce(planted);
    const c = await open();
    const ch = await c.createChannel();
    const x = `delayed-${process.pid}`;
    await ch.assertExchange(x, 'x-delayed-message', { durable: false, autoDelete: false, arguments: { 'x-delayed-type': 'fanout' } });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, x, '');
    ch.publish(x, '', Buffer.from('first'), { headers: { 'x-delay': 10 } });
    const line = await log.waitFor((l) => l.level >= 50 && l.exchange === x);
    expect(line.msg).toMatch(/delayed message/);
    ch.publish(x, '', Buffer.from('second'), { headers: { 'x-delay': 10 } });
    let m = await ch.get(queue, { noAck: true });
    while (m === false) {
      await new Promise((r) => setImmediate(r));
      m = await ch.get(queue, { noAck: true });
    }
    expect(m.content.toString()).toBe('second');
    await ch.deleteExchange(x);
    await healthy();
  });

  it('resource alarm handler: logged; the broker keeps serving', async () => {
    vi.spyOn(Connection.prototype, 'alarmChanged').mockImplementation(planted);
    const c = await open();
    await c.createChannel(); // a connection exists to be told
    memoryUsed = 2000;
    await monitor.checkNow();
    expect(await log.waitFor((l) => l.level >= 50 && /resource alarm/.test(l.msg ?? ''))).toBeDefined();
    vi.restoreAllMocks();
    memoryUsed = 0;
    await monitor.checkNow();
    await healthy();
  });

  it('socket data handler (confirms flushed after a read): only that connection is closed, with 541', async () => {
    const c = await open();
    const ch = await c.createConfirmChannel();
    ch.on('error', () => {});
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const closed = closedWith(c);
    vi.spyOn(Channel.prototype, 'flushConfirms').mockImplementation(planted);
    ch.sendToQueue(queue, Buffer.from('x'));
    expect((await closed).code).toBe(541);
    expect(await log.waitFor(contained('socket data'))).toBeDefined();
    vi.restoreAllMocks();
    await healthy();
  });

  it('store commit listener (publisher confirms after the commit): only that connection is closed', async () => {
    const c = await open();
    const ch = await c.createConfirmChannel();
    ch.on('error', () => {});
    const queue = `durable-${process.pid}`;
    await ch.assertQueue(queue, { durable: true });
    const closed = closedWith(c);
    vi.spyOn(Channel.prototype, 'batchCommitted').mockImplementation(planted);
    ch.sendToQueue(queue, Buffer.from('x'), { persistent: true });
    expect((await closed).code).toBe(541);
    expect(await log.waitFor(contained('publisher confirms'))).toBeDefined();
    vi.restoreAllMocks();
    const other = await (await open()).createChannel();
    await other.deleteQueue(queue);
    await healthy();
  });

  it('heartbeat timer: only that connection is closed', async () => {
    vi.spyOn(Connection.prototype, 'onHeartbeatTick').mockImplementation(planted);
    const c = await open(`${broker.url}?heartbeat=1`);
    const closed = closedWith(c);
    expect((await closed).code).toBe(541);
    expect(await log.waitFor(contained('heartbeat timer'))).toBeDefined();
    vi.restoreAllMocks();
    await healthy();
  });
});
