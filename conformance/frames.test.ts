import { describe, expect, it } from 'vitest';
import {
  amqpUrl,
  ArgReader,
  args,
  basicPublishArgs,
  encodeBody,
  encodeContentHeader,
  encodeFrame,
  encodeHeartbeat,
  encodeMethod,
  M,
  PROTOCOL_HEADER,
  queueDeclareArgs,
  RawClient,
} from './support/index.js';

/*
 * Frame-level conformance with a hand-rolled client. RabbitMQ answers a frame it cannot
 * parse (501) with connection.close and then stops reading, so it only drops the socket
 * after its close timeout (~3 s in 3.10), even if close-ok is sent. Those tests run
 * concurrently so the file still takes a few seconds.
 */

const CHANNEL_OPEN = args().shortstr('').toBuffer();

async function open(tune: { frameMax?: number; channelMax?: number } = {}): Promise<RawClient> {
  const { client } = await RawClient.open(amqpUrl(), tune);
  return client;
}

/** Opens channel 1 and declares a server-named exclusive queue; resolves with its name. */
async function declareQueue(c: RawClient, channel = 1): Promise<string> {
  c.sendMethod(channel, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
  const ok = await c.expectMethod(M.QueueDeclareOk);
  return new ArgReader(ok.args).shortstr();
}

/** A synchronous round trip on channel 1: the broker has processed everything sent before it. */
async function barrier(c: RawClient, channel = 1): Promise<void> {
  await declareQueue(c, channel);
}

function publishFrames(channel: number, routingKey: string, body: Buffer): Buffer {
  return Buffer.concat([
    encodeMethod(channel, M.BasicPublish, basicPublishArgs('', routingKey)),
    encodeContentHeader(channel, body.length),
    encodeBody(channel, body),
  ]);
}

/** basic.get on `queue` (no-ack); resolves with the body, or null on get-empty. */
async function basicGet(c: RawClient, queue: string, channel = 1): Promise<Buffer | null> {
  c.sendMethod(channel, M.BasicGet, args().short(0).shortstr(queue).bits(true).toBuffer());
  const m = await c.nextMethod();
  if (m.classId === M.BasicGetEmpty[0] && m.methodId === M.BasicGetEmpty[1]) return null;
  expect([m.classId, m.methodId]).toEqual([...M.BasicGetOk]);
  const header = await c.nextFrame();
  expect(header.type).toBe(2);
  const size = Number(header.payload.readBigUInt64BE(4));
  const parts: Buffer[] = [];
  let got = 0;
  while (got < size) {
    const body = await c.nextFrame();
    expect(body.type).toBe(3);
    parts.push(body.payload);
    got += body.payload.length;
  }
  return Buffer.concat(parts);
}

// every test uses its own connection, so all of them can run at once
describe.concurrent('frames', () => {
  describe('protocol header', () => {
    it.each([
      ['AMQP 0-8', Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 8, 0])],
      ['AMQP 0-9-0', Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 0])],
      ['HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ])('%s → server replies with its own protocol header "AMQP 0 0 9 1" and closes', async (_name, header) => {
      const c = await RawClient.connect(amqpUrl());
      c.write(header);
      // spec: "the server MUST ... write a valid protocol header and then close the socket"
      const reply = await c.readUntilClose();
      expect([...reply]).toEqual([...PROTOCOL_HEADER]);
    });

    it('the whole conversation sent one octet at a time works', async () => {
      const c = await RawClient.connect(amqpUrl());
      c.bytewise = true;
      await c.handshake(amqpUrl());
      await c.openChannel(1);
      const queue = await declareQueue(c);
      c.write(publishFrames(1, queue, Buffer.from('one byte at a time')));
      expect((await basicGet(c, queue))?.toString()).toBe('one byte at a time');
      await c.close();
    });

    it('several frames in a single TCP write are all processed', async () => {
      const c = await open();
      // channel.open + queue.declare + publish + basic.get in one write
      c.write(Buffer.concat([encodeMethod(1, M.ChannelOpen, CHANNEL_OPEN), encodeMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }))]));
      await c.expectMethod(M.ChannelOpenOk);
      const ok = await c.expectMethod(M.QueueDeclareOk);
      const queue = new ArgReader(ok.args).shortstr();
      c.write(publishFrames(1, queue, Buffer.from('batched')));
      expect((await basicGet(c, queue))?.toString()).toBe('batched');
      await c.close();
    });

    it('a heartbeat frame on channel 0 is accepted', async () => {
      const c = await open();
      await c.openChannel(1);
      c.write(encodeHeartbeat(0));
      await barrier(c);
      await c.close();
    });
  });

  describe('connection.tune-ok', () => {
    it('frame_max below the 4096 minimum → the broker drops the socket without connection.open-ok', async () => {
      const err = await RawClient.open(amqpUrl(), { frameMax: 1024 }).then(
        ({ client }) => {
          client.destroy();
          return null;
        },
        (e: unknown) => e as Error,
      );
      // RabbitMQ: errors before connection.open-ok are signalled by closing the socket (no connection.close)
      expect(err?.message).toMatch(/socket closed/);
    });

    it('frame_max above what the broker proposed → the broker drops the socket', async () => {
      const err = await RawClient.open(amqpUrl(), { frameMax: 1 << 20 }).then(
        ({ client }) => {
          client.destroy();
          return null;
        },
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/socket closed/);
    });
  });

  describe('frame errors → connection.close 501 FRAME_ERROR', () => {
    it('a bad frame-end octet', async () => {
      const c = await open();
      await c.openChannel(1);
      const declare = encodeMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
      declare[declare.length - 1] = 0x00;
      c.write(declare);
      // RabbitMQ: "FRAME_ERROR - type 1, all octets = <<0,50,0,10,...>>: {invalid_frame_end_marker,0}"
      await c.expectConnectionClose({ code: 501, text: /^FRAME_ERROR - .*invalid_frame_end_marker/, method: [0, 0] });
    });

    it('an unknown frame type', async () => {
      const c = await open();
      await c.openChannel(1);
      c.write(encodeFrame(9, 0, Buffer.alloc(0)));
      await c.expectConnectionClose({ code: 501, text: 'FRAME_ERROR - type 9, all octets = <<>>: unknown_frame', method: [0, 0] });
    });

    it('an unknown frame type on an open channel', async () => {
      const c = await open();
      await c.openChannel(1);
      c.write(encodeFrame(42, 1, Buffer.from([1, 2, 3])));
      await c.expectConnectionClose({ code: 501, text: 'FRAME_ERROR - type 42, all octets = <<1,2,3>>: unknown_frame', method: [0, 0] });
    });

    it('a frame whose payload exceeds the negotiated frame_max', async () => {
      const c = await open({ frameMax: 4096 });
      await c.openChannel(1);
      c.write(encodeMethod(1, M.BasicPublish, basicPublishArgs('', 'nowhere')));
      c.write(encodeContentHeader(1, 4097));
      c.write(encodeBody(1, Buffer.alloc(4097)));
      // RabbitMQ reports the limit as frame_max - 8 but only rejects payloads larger than frame_max
      await c.expectConnectionClose({
        code: 501,
        text: 'FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}',
        method: [0, 0],
      });
    });

    it('a frame of exactly frame_max octets (payload + 8) is accepted', async () => {
      const c = await open({ frameMax: 4096 });
      await c.openChannel(1);
      const queue = await declareQueue(c);
      const body = Buffer.alloc(4088, 7);
      c.write(publishFrames(1, queue, body));
      expect(await basicGet(c, queue)).toEqual(body);
      await c.close();
    });

    it('a payload up to frame_max itself is tolerated (RabbitMQ leniency: frame_max counted without the 8 framing octets)', async () => {
      const c = await open({ frameMax: 4096 });
      await c.openChannel(1);
      const queue = await declareQueue(c);
      // a server that enforces the spec strictly would close here; RabbitMQ (and hence clients in the wild) do not
      c.write(publishFrames(1, queue, Buffer.alloc(4096, 1)));
      expect((await basicGet(c, queue))?.length).toBe(4096);
      await c.close();
    });
  });

  describe('unexpected frames → connection.close 505 UNEXPECTED_FRAME', () => {
    it('a content header on a channel with no basic.publish in progress', async () => {
      const c = await open();
      await c.openChannel(1);
      c.write(encodeContentHeader(1, 3));
      await c.expectConnectionClose({
        code: 505,
        text: 'UNEXPECTED_FRAME - expected method frame, got non method frame instead',
        method: [0, 0],
      });
    });

    it('a body frame while a method is expected', async () => {
      const c = await open();
      await c.openChannel(1);
      c.write(encodeBody(1, Buffer.from('abc')));
      await c.expectConnectionClose({
        code: 505,
        text: 'UNEXPECTED_FRAME - expected method frame, got non method frame instead',
        method: [0, 0],
      });
    });

    it('a method frame between basic.publish and its content header', async () => {
      const c = await open();
      await c.openChannel(1);
      c.write(encodeMethod(1, M.BasicPublish, basicPublishArgs('', 'x')));
      c.write(encodeMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true })));
      await c.expectConnectionClose({
        code: 505,
        text: 'UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead',
        method: [60, 40],
      });
    });

    it('a method frame between the content header and the body', async () => {
      const c = await open();
      await c.openChannel(1);
      c.write(encodeMethod(1, M.BasicPublish, basicPublishArgs('', 'x')));
      c.write(encodeContentHeader(1, 3));
      c.write(encodeMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true })));
      await c.expectConnectionClose({
        code: 505,
        text: 'UNEXPECTED_FRAME - expected content body, got non content body frame instead',
        method: [60, 40],
      });
    });

    it('a content header on another channel does not complete a publish in progress (per-channel assembly)', async () => {
      const c = await open();
      await c.openChannel(1);
      await c.openChannel(2);
      const queue = await declareQueue(c);
      // publish on channel 1 interleaved with a complete publish on channel 2: both must arrive
      c.write(encodeMethod(1, M.BasicPublish, basicPublishArgs('', queue)));
      c.write(publishFrames(2, queue, Buffer.from('from-2')));
      c.write(encodeContentHeader(1, 6));
      c.write(encodeBody(1, Buffer.from('from-1')));
      const bodies = [(await basicGet(c, queue))?.toString(), (await basicGet(c, queue))?.toString()];
      // in either order: RabbitMQ's channels are processes of their own, racing to the queue
      expect(bodies.sort()).toEqual(['from-1', 'from-2']);
      await c.close();
    });

    it('a heartbeat frame on a non-zero channel', async () => {
      const c = await open();
      await c.openChannel(1);
      c.write(encodeHeartbeat(1));
      // RabbitMQ: 505, not 501 as the spec's "heartbeat on channel != 0" wording might suggest
      await c.expectConnectionClose({ code: 505, text: 'UNEXPECTED_FRAME - type 8, all octets = <<>>', method: [0, 0] });
    });
  });

  describe('channel numbering → connection.close 504 CHANNEL_ERROR', () => {
    it('a method on a channel that was never opened', async () => {
      const c = await open();
      c.sendMethod(3, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
      await c.expectConnectionClose({ code: 504, text: "CHANNEL_ERROR - expected 'channel.open'", method: [50, 10] });
    });

    it('channel.close on a channel that was never opened', async () => {
      const c = await open();
      c.sendMethod(5, M.ChannelClose, args().short(200).shortstr('').short(0).short(0).toBuffer());
      await c.expectConnectionClose({ code: 504, text: "CHANNEL_ERROR - expected 'channel.open'", method: [20, 40] });
    });

    it('channel.open twice on the same channel', async () => {
      const c = await open();
      await c.openChannel(1);
      c.sendMethod(1, M.ChannelOpen, CHANNEL_OPEN);
      await c.expectConnectionClose({ code: 504, text: "CHANNEL_ERROR - second 'channel.open' seen", method: [20, 10] });
    });

    it('channel.open on channel 0', async () => {
      const c = await open();
      c.sendMethod(0, M.ChannelOpen, CHANNEL_OPEN);
      await c.expectConnectionClose({
        code: 504,
        text: 'CHANNEL_ERROR - unexpected method in connection state running',
        method: [20, 10],
      });
    });

    it('a non-connection method on channel 0', async () => {
      const c = await open();
      c.sendMethod(0, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
      await c.expectConnectionClose({
        code: 504,
        text: 'CHANNEL_ERROR - unexpected method in connection state running',
        method: [50, 10],
      });
    });

    it('opening more channels than the negotiated channel_max → 530 NOT_ALLOWED', async () => {
      const c = await open({ channelMax: 10 });
      for (let ch = 1; ch <= 10; ch++) await c.openChannel(ch);
      c.sendMethod(11, M.ChannelOpen, CHANNEL_OPEN);
      await c.expectConnectionClose({
        code: 530,
        text: 'NOT_ALLOWED - number of channels opened (10) has reached the negotiated channel_max (10)',
        method: [0, 0],
      });
    });

    it('a channel number can be reused after channel.close / close-ok', async () => {
      const c = await open();
      await c.openChannel(1);
      c.sendMethod(1, M.ChannelClose, args().short(200).shortstr('').short(0).short(0).toBuffer());
      await c.expectMethod(M.ChannelCloseOk);
      await c.openChannel(1);
      await barrier(c);
      await c.close();
    });
  });

  describe('unknown methods', () => {
    it.each([
      ['unknown method of a known class', [50, 99] as const],
      ['unknown class', [77, 10] as const],
    ])('%s ends the connection', async (_name, method) => {
      const c = await open();
      await c.openChannel(1);
      c.sendMethod(1, method);
      // RabbitMQ 3.10 drops the socket without a connection.close here; a connection.close
      // (540 NOT_IMPLEMENTED / 503) before the close would be just as acceptable to clients
      const close = await c.drainUntilClosed();
      if (close) expect([503, 540]).toContain(close.code);
    });
  });
});
