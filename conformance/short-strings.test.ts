import { describe, expect, it } from 'vitest';
import { amqpUrl, ArgReader, isWarren, M, RawClient, args, encodeContentHeader, encodeBody, encodeMethod, queueDeclareArgs, type Close } from './support/index.js';

/*
 * Names and other short strings (queue and exchange names, routing keys, consumer tags,
 * reply texts) must be UTF-8. RabbitMQ checks every shortstr argument of the methods that
 * carry no content and closes the connection with 501 (observed on 3.10). Each test has its
 * own connection, so they run at once.
 */

/** A shortstr of raw bytes. */
const raw = (...bytes: number[]): Buffer => Buffer.concat([Buffer.from([bytes.length]), Buffer.from(bytes)]);
const NOT_UTF8 = raw(0x71, 0xff, 0xfe);

const MALFORMED: Close = { code: 501, text: 'FRAME_ERROR - Malformed UTF-8 in shortstr', method: [0, 0] };

async function send(...frames: Buffer[]): Promise<Close | null> {
  const { client } = await RawClient.open(amqpUrl());
  await client.openChannel(1);
  client.write(Buffer.concat(frames));
  return client.drainUntilClosed();
}

describe.concurrent('short strings that are not UTF-8 → connection.close 501 FRAME_ERROR', () => {
  it.each([
    ['queue.declare queue name', encodeMethod(1, M.QueueDeclare, args().short(0).raw(NOT_UTF8).bits(false, false, true, false, false).table().toBuffer())],
    ['exchange.declare exchange name', encodeMethod(1, [40, 10], args().short(0).raw(NOT_UTF8).shortstr('direct').bits(false, false, false, false, false).table().toBuffer())],
    ['exchange.declare type', encodeMethod(1, [40, 10], args().short(0).shortstr('x').raw(NOT_UTF8).bits(false, false, false, false, false).table().toBuffer())],
    ['queue.bind routing key', encodeMethod(1, [50, 20], args().short(0).shortstr('q').shortstr('amq.direct').raw(NOT_UTF8).bits(false).table().toBuffer())],
    ['basic.consume consumer tag', encodeMethod(1, [60, 20], args().short(0).shortstr('q').raw(NOT_UTF8).bits(false, false, false, false).table().toBuffer())],
    ['basic.get queue name', encodeMethod(1, M.BasicGet, args().short(0).raw(NOT_UTF8).bits(true).toBuffer())],
    ['basic.cancel consumer tag', encodeMethod(1, [60, 30], args().raw(NOT_UTF8).bits(false).toBuffer())],
    ['channel.close reply text', encodeMethod(1, M.ChannelClose, args().short(200).raw(NOT_UTF8).short(0).short(0).toBuffer())],
    ['an overlong encoding', encodeMethod(1, M.QueueDeclare, args().short(0).raw(raw(0x71, 0xc0, 0x80)).bits(false, false, true, false, false).table().toBuffer())],
    ['a multi-byte sequence cut short', encodeMethod(1, M.QueueDeclare, args().short(0).raw(raw(0x71, 0xe2, 0x82)).bits(false, false, true, false, false).table().toBuffer())],
  ])('%s', async (_name, frame) => {
    expect(await send(frame)).toEqual(MALFORMED);
  });

  it('names that are valid UTF-8 (multi-byte, NUL, U+FFFF) are accepted', async () => {
    const { client } = await RawClient.open(amqpUrl());
    await client.openChannel(1);
    for (const bytes of [[0x71, 0xe2, 0x82, 0xac], [0x71, 0xf0, 0x9f, 0x98, 0x80], [0x71, 0x00], [0x71, 0xef, 0xbf, 0xbf]]) {
      client.sendMethod(1, M.QueueDeclare, args().short(0).raw(raw(...bytes)).bits(false, false, true, false, false).table().toBuffer());
      const ok = await client.expectMethod(M.QueueDeclareOk);
      expect(Buffer.from(new ArgReader(ok.args).shortstr(), 'utf8')).toEqual(Buffer.from(bytes));
    }
    await client.close();
  });

  // RabbitMQ 3.10 checks UTF-8 with xmerl_ucs, which lets encoded surrogates and code points
  // above U+10FFFF through, and skips the check on basic.publish (it routes the raw bytes).
  // Warren keeps names as strings, where such bytes would all become U+FFFD: it refuses them.
  it.skipIf(!isWarren())('Warren: an encoded surrogate or a code point above U+10FFFF is refused too', async () => {
    for (const name of [raw(0x71, 0xed, 0xa0, 0x80), raw(0x71, 0xf4, 0x90, 0x80, 0x80)]) {
      expect(await send(encodeMethod(1, M.QueueDeclare, args().short(0).raw(name).bits(false, false, true, false, false).table().toBuffer()))).toEqual(MALFORMED);
    }
  });

  it.skipIf(!isWarren())('Warren: a basic.publish routing key or exchange name that is not UTF-8 is refused', async () => {
    for (const publish of [
      args().short(0).shortstr('').raw(NOT_UTF8).bits(false, false).toBuffer(),
      args().short(0).raw(NOT_UTF8).shortstr('q').bits(false, false).toBuffer(),
    ]) {
      expect(await send(encodeMethod(1, M.BasicPublish, publish), encodeContentHeader(1, 1), encodeBody(1, Buffer.from('x')))).toEqual(MALFORMED);
    }
  });

  it('only the offending connection is closed: another one is served', async () => {
    expect(await send(encodeMethod(1, M.QueueDeclare, args().short(0).raw(NOT_UTF8).bits(false, false, true, false, false).table().toBuffer()))).toEqual(MALFORMED);
    const { client } = await RawClient.open(amqpUrl());
    await client.openChannel(1);
    client.sendMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
    await client.expectMethod(M.QueueDeclareOk);
    await client.close();
  });
});
