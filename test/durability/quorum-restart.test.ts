import type { ChannelModel } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanRestart,
  connectionClosed,
  killRestart,
  openChannel,
  openConfirmChannel,
  openConnection,
  removeDir,
  tempDataDir,
  TEST_TIMEOUT,
  type BrokerHandle,
  type RestartMode,
} from './harness.js';

// A quorum queue keeps every message on disk whatever its delivery mode (as RabbitMQ's quorum
// queues do): a confirmed transient message survives a restart, even a kill -9.

const QUORUM = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

describe.each([cleanRestart, killRestart])('quorum queues: $name', (mode: RestartMode) => {
  let dataDir: string | undefined;
  let broker: BrokerHandle | undefined;
  const conns: ChannelModel[] = [];

  afterEach(async () => {
    for (const c of conns.splice(0)) await c.close().catch(() => {});
    await broker?.stop();
    broker = undefined;
    if (dataDir !== undefined) await removeDir(dataDir);
    dataDir = undefined;
  });

  async function connectTo(): Promise<ChannelModel> {
    const c = await openConnection(broker!.url);
    conns.push(c);
    return c;
  }

  it(
    'confirmed messages survive, transient ones included; an unacked delivery comes back redelivered',
    async () => {
      dataDir = await tempDataDir();
      broker = await mode.start(dataDir);
      const conn = await connectTo();
      const ch = await openConfirmChannel(conn);
      await ch.assertQueue('qq.restart', QUORUM);
      ch.sendToQueue('qq.restart', Buffer.from('transient-1'), { deliveryMode: 1 });
      ch.sendToQueue('qq.restart', Buffer.from('persistent'), { persistent: true });
      ch.sendToQueue('qq.restart', Buffer.from('transient-2'));
      await ch.waitForConfirms();
      // one delivery left unacked at the restart
      const held = await ch.get('qq.restart', { noAck: false });
      expect(held && held.content.toString()).toBe('transient-1');

      await mode.settle(conn);
      await broker.stop();
      await Promise.all(conns.splice(0).map(connectionClosed));
      broker = await mode.start(dataDir);

      const ch2 = await openChannel(await connectTo());
      // still a quorum queue
      expect((await ch2.assertQueue('qq.restart', QUORUM)).messageCount).toBe(3);
      const got: [string, boolean, number | undefined][] = [];
      for (let m = await ch2.get('qq.restart', { noAck: true }); m !== false; m = await ch2.get('qq.restart', { noAck: true })) {
        got.push([m.content.toString(), m.fields.redelivered, m.properties.deliveryMode]);
      }
      expect(got).toEqual([
        ['transient-1', true, 1],
        ['persistent', false, 2],
        ['transient-2', false, undefined],
      ]);
    },
    TEST_TIMEOUT,
  );
});
