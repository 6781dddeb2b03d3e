import { describe, expect, it } from 'vitest';
import {
  ArgReader,
  M,
  PROTOCOL_HEADER_0_9,
  RawClient,
  amqpUrl,
  args,
  basicPublishArgs,
  encodeBody,
  encodeContentHeader,
  encodeMethod,
  queueDeclareArgs,
} from './support/index.js';

// AMQP 0-9 clients (Perl's Net::AMQP under AnyEvent::RabbitMQ) open with "AMQP" 1 1 0 9.
// RabbitMQ treats that header as 0-9-1 (rabbit_reader:handshake/2) and so does Warren.

describe('protocol header AMQP 0-9 ("AMQP" 1 1 0 9)', () => {
  it('is accepted: connection.start says 0-9, and the session is AMQP 0-9-1', async () => {
    const client = await RawClient.connect(amqpUrl());
    try {
      await client.handshake(amqpUrl(), {}, PROTOCOL_HEADER_0_9);
      const start = new ArgReader(client.connectionStart!.args);
      expect([start.octet(), start.octet()]).toEqual([0, 9]);
      await client.openChannel(1);
      client.sendMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
      const queue = new ArgReader((await client.expectMethod(M.QueueDeclareOk)).args).shortstr();
      const body = Buffer.from('from a 0-9 client');
      client.write(Buffer.concat([encodeMethod(1, M.BasicPublish, basicPublishArgs('', queue)), encodeContentHeader(1, body.length), encodeBody(1, body)]));
      client.sendMethod(1, M.BasicGet, args().short(0).shortstr(queue).bits(true).toBuffer());
      await client.expectMethod(M.BasicGetOk);
      expect((await client.nextFrame()).type).toBe(2);
      expect((await client.nextFrame()).payload).toEqual(body);
      await client.close();
    } finally {
      client.destroy();
    }
  });
});
