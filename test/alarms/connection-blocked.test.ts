import amqp from 'amqplib';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ResourceMonitor } from '../../src/alarms/resource-monitor.js';
import { Broker } from '../../src/broker.js';
import { resolveConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logging/logger.js';

/**
 * RabbitMQ's resource alarms: while one is set, connections that publish are blocked
 * (connection.blocked, then nothing more is read from them); consumers go on; when it
 * clears, connection.unblocked and the held publishes are processed.
 */
describe('connection.blocked / unblocked on a memory alarm', () => {
  let stop: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await stop?.();
    stop = null;
  });

  it('blocks publishers, not consumers, and releases them when the alarm clears', async () => {
    let used = 100;
    const monitor = new ResourceMonitor({ memoryHighWatermark: { absolute: 1000 }, readMemory: () => used });
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: null, memoryHighWatermark: 0, diskFreeLimit: 0, managementPort: null, metricsPort: null });
    const broker = new Broker(config, createLogger('silent'), undefined, monitor);
    const running = await broker.start();
    stop = () => running.close();

    const publisher = await amqp.connect(running.url);
    const consumer = await amqp.connect(running.url);
    const pubCh = await publisher.createChannel();
    const conCh = await consumer.createChannel();
    const { queue } = await conCh.assertQueue('', { exclusive: false, autoDelete: false });
    const got: string[] = [];
    let notify: (() => void) | null = null;
    await conCh.consume(queue, (m) => {
      if (m) got.push(m.content.toString());
      notify?.();
    }, { noAck: true });

    pubCh.sendToQueue(queue, Buffer.from('before'));
    await new Promise<void>((r) => (notify = () => got.length === 1 && r()));

    // alarm: the publisher is told and blocked
    used = 5000;
    const blocked = once(publisher, 'blocked');
    await monitor.checkNow();
    const [reason] = (await blocked) as [string];
    expect(reason).toBe('low on memory');

    pubCh.sendToQueue(queue, Buffer.from('during'));
    // the consumer connection is not blocked: a round trip on it completes
    expect((await conCh.checkQueue(queue)).queue).toBe(queue);
    expect(got).toEqual(['before']);

    // alarm cleared: unblocked, and the held publish goes through
    used = 100;
    const unblocked = once(publisher, 'unblocked');
    const delivered = new Promise<void>((r) => (notify = () => got.length === 2 && r()));
    await monitor.checkNow();
    await unblocked;
    await delivered;
    expect(got).toEqual(['before', 'during']);
    await conCh.deleteQueue(queue);
    await publisher.close();
    await consumer.close();
  });
});
