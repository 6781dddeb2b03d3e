import { describe, expect, it } from 'vitest';
import type { ChannelModel } from 'amqplib';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import { channelErrorCode, childBrokerFixture, commitBarrier, openChannel, TEST_TIMEOUT } from './harness.js';

// RabbitMQ: a durable queue/exchange/binding is in the (fsynced) metadata store when its
// declare-ok/bind-ok/delete-ok is sent, so a client may rely on it across a crash at once.
describe('topology changes are durable once their -ok is received (kill -9 right after)', () => {
  const broker = childBrokerFixture();
  const connectTo = (): Promise<ChannelModel> => broker.connect();
  const crashAndRestart = (): Promise<unknown> => broker.crashAndRestart();

  it('declare-ok and bind-ok', async () => {
    await broker.start();
    const ch = await openChannel(await connectTo());
    await ch.assertExchange('p.x', 'topic', { durable: true });
    await ch.assertQueue('p.q', { durable: true, arguments: { 'x-max-length': 5 } });
    await ch.bindQueue('p.q', 'p.x', 'k.#');

    await crashAndRestart();

    const ch2 = await openChannel(await connectTo());
    await ch2.checkExchange('p.x');
    await ch2.checkQueue('p.q');
    ch2.publish('p.x', 'k.1', Buffer.from('routed'));
    const m = await ch2.get('p.q', { noAck: true });
    expect(m === false ? null : m.content.toString()).toBe('routed');
  }, TEST_TIMEOUT);

  it('delete-ok', async () => {
    await broker.start();
    const conn = await connectTo();
    const ch = await openChannel(conn);
    await ch.assertExchange('p.gone', 'fanout', { durable: true });
    await ch.assertQueue('p.gone', { durable: true });
    await commitBarrier(conn);
    await ch.deleteQueue('p.gone');
    await ch.deleteExchange('p.gone');

    await crashAndRestart();

    const conn2 = await connectTo();
    expect(await channelErrorCode(conn2, (c) => c.checkQueue('p.gone'))).toBe(ReplyCode.NotFound);
    expect(await channelErrorCode(conn2, (c) => c.checkExchange('p.gone'))).toBe(ReplyCode.NotFound);
  }, TEST_TIMEOUT);
});
