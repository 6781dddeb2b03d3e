import { describe, expect, it } from 'vitest';
import {
  amqpUrl,
  ArgReader,
  args,
  closeEvent,
  connect,
  consumeN,
  expectChannelClose,
  expectConnectionUsable,
  M,
  openChannel,
  queueDeclareArgs,
  RawClient,
  uniqueName,
} from './support/index.js';

const passiveDeclareArgs = (queue: string): Buffer => args().short(0).shortstr(queue).bits(true, false, false, false, false).table().toBuffer();

describe('channel.open / channel.close', () => {
  it('opens and closes a channel cleanly', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      let errored = false;
      ch.on('error', () => (errored = true));
      const closed = closeEvent(ch);
      await ch.close();
      await closed;
      expect(errored).toBe(false);
      await expectConnectionUsable(conn);
    } finally {
      await conn.close();
    }
  });

  it('many channels on one connection work independently', async () => {
    const conn = await connect();
    try {
      const channels = await Promise.all(Array.from({ length: 50 }, () => openChannel(conn)));
      const queues = await Promise.all(channels.map((ch) => ch.assertQueue('', { exclusive: true })));
      channels.forEach((ch, i) => ch.sendToQueue(queues[i]!.queue, Buffer.from(`m${i}`)));
      const bodies = await Promise.all(channels.map(async (ch, i) => (await consumeN(ch, queues[i]!.queue, 1))[0]!.content.toString()));
      expect(bodies).toEqual(channels.map((_, i) => `m${i}`));
      await Promise.all(channels.map((ch) => ch.close()));
    } finally {
      await conn.close();
    }
  });

  it('an error on one channel leaves the other channels of the connection working', async () => {
    const conn = await connect();
    try {
      const good = await openChannel(conn);
      const bad = await openChannel(conn);
      const { queue } = await good.assertQueue('', { exclusive: true });
      await expectChannelClose(bad, { code: 404, text: /^NOT_FOUND - no queue 'missing-/ }, () => bad.checkQueue(uniqueName('missing')));
      // the surviving channel still publishes and consumes
      good.sendToQueue(queue, Buffer.from('still here'));
      const [msg] = await consumeN(good, queue, 1);
      expect(msg!.content.toString()).toBe('still here');
    } finally {
      await conn.close();
    }
  });

  it('using a channel after it was closed fails without touching the connection', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await ch.close();
      // amqplib refuses locally ("Channel closed"); the connection must be unaffected
      await expect(ch.assertQueue('', { exclusive: true })).rejects.toThrow(/closed/i);
      await expectConnectionUsable(conn);
    } finally {
      await conn.close();
    }
  });

  it('a method on a channel after channel.close-ok → connection.close 504 CHANNEL_ERROR (raw)', async () => {
    const { client } = await RawClient.open(amqpUrl());
    await client.openChannel(1);
    client.sendMethod(1, M.ChannelClose, args().short(200).shortstr('').short(0).short(0).toBuffer());
    await client.expectMethod(M.ChannelCloseOk);
    client.sendMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
    await client.expectConnectionClose({ code: 504, text: "CHANNEL_ERROR - expected 'channel.open'", method: [50, 10] });
  });

  it('after a server channel.close, frames sent before close-ok are discarded and the channel can be reopened (raw)', async () => {
    const { client } = await RawClient.open(amqpUrl());
    try {
      await client.openChannel(1);
      // passive declare of a missing queue → channel.close 404; the client keeps talking before it notices
      client.sendMethod(1, M.QueueDeclare, passiveDeclareArgs(uniqueName('missing')));
      client.sendMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
      await client.expectChannelClose(1, { code: 404, text: /^NOT_FOUND - no queue 'missing-[0-9a-f]+' in vhost '\/'$/, method: [50, 10] });
      // spec: after sending channel.close the peer discards everything but close/close-ok,
      // so no declare-ok for the second queue.declare; the channel number is free again
      await client.openChannel(1);
      client.sendMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
      const ok = await client.expectMethod(M.QueueDeclareOk);
      expect(new ArgReader(ok.args).shortstr()).toMatch(/^amq\.gen-/);
    } finally {
      await client.close();
    }
  });

  it('channel.close from the client with a non-200 reply code is answered with close-ok (raw)', async () => {
    const { client } = await RawClient.open(amqpUrl());
    try {
      await client.openChannel(1);
      client.sendMethod(1, M.ChannelClose, args().short(320).shortstr('client going away').short(0).short(0).toBuffer());
      const ok = await client.expectMethod(M.ChannelCloseOk);
      expect(ok.channel).toBe(1);
    } finally {
      await client.close();
    }
  });
});

describe('channel.flow', () => {
  it('active=true is answered with flow-ok active=true (raw)', async () => {
    const { client } = await RawClient.open(amqpUrl());
    try {
      await client.openChannel(1);
      client.sendMethod(1, M.ChannelFlow, args().bits(true).toBuffer());
      const ok = await client.expectMethod(M.ChannelFlowOk);
      expect(ok.channel).toBe(1);
      expect(new ArgReader(ok.args).octet() & 1).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('active=false → connection.close 540 NOT_IMPLEMENTED (RabbitMQ does not support client flow control)', async () => {
    const { client } = await RawClient.open(amqpUrl());
    await client.openChannel(1);
    client.sendMethod(1, M.ChannelFlow, args().bits(false).toBuffer());
    await client.expectConnectionClose({ code: 540, text: 'NOT_IMPLEMENTED - active=false', method: [20, 20] });
  });
});
