import { describe, expect, it } from 'vitest';
import {
  ArgReader,
  FrameType,
  M,
  RawClient,
  args,
  basicPublishArgs,
  decodeClose,
  encodeBody,
  encodeFrame,
  encodeMethod,
  isMethod,
  queueDeclareArgs,
  type Close,
  amqpUrl,
  isWarren,
} from './support/index.js';

/*
 * What the broker does with every shape of content header a client can send: RabbitMQ
 * decodes the properties of each publish and answers what it cannot decode by closing the
 * connection with 541 and the bare text INTERNAL_ERROR (its channel crashes); everything it
 * can decode is delivered byte for byte. The answers below were observed on RabbitMQ 3.10.
 * Every test has its own connection, so they run at once (RabbitMQ keeps a connection it
 * closed for a few seconds).
 */

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A field table: u32 length + entries. */
function table(entries: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(entries.length);
  return Buffer.concat([len, entries]);
}

/** Property bytes with only a headers table whose entries are `entries`. */
function headers(entries: Buffer): Buffer {
  return Buffer.concat([hex('2000'), table(entries)]);
}

/** One table entry, key "k". */
function entry(valueHex: string): Buffer {
  return Buffer.concat([hex('016b'), hex(valueHex)]);
}

/** Entries of a table holding tables `levels - 1` deep (the outermost table is level 1). */
function nestedEntries(levels: number): Buffer {
  let inner = Buffer.alloc(0);
  for (let level = levels; level > 1; level--) inner = Buffer.concat([hex('016b 46'), table(inner)]);
  return inner;
}

function headerFrame(payload: Buffer): Buffer {
  return encodeFrame(FrameType.Header, 1, payload);
}

/** Content header payload for class basic: class, weight, body size, then the property bytes. */
function basicHeader(bodySize: number, properties: Buffer, classId = 60, weight = 0): Buffer {
  return args().short(classId).short(weight).longlong(BigInt(bodySize)).raw(properties).toBuffer();
}

type Outcome =
  | { kind: 'delivered'; properties: Buffer; body: Buffer }
  | { kind: 'connection.close'; close: Close }
  | { kind: 'channel.close'; close: Close };

/**
 * Opens a connection and channel 1, declares an exclusive queue, publishes one message to
 * it with the given content header payload, then asks for it with basic.get: resolves with
 * the delivered properties, or with the close the broker answered instead.
 */
async function publishAndGet(headerPayload: Buffer, body = Buffer.from('x')): Promise<Outcome> {
  const { client } = await RawClient.open(amqpUrl());
  try {
    await client.openChannel(1);
    client.sendMethod(1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
    const queue = new ArgReader((await client.expectMethod(M.QueueDeclareOk)).args).shortstr();
    client.write(
      Buffer.concat([encodeMethod(1, M.BasicPublish, basicPublishArgs('', queue)), headerFrame(headerPayload), encodeBody(1, body)]),
    );
    client.sendMethod(1, M.BasicGet, args().short(0).shortstr(queue).bits(true).toBuffer());
    const m = await client.nextMethod();
    if (isMethod(m, M.ConnectionClose)) {
      const close = decodeClose(m);
      client.sendMethod(0, M.ConnectionCloseOk);
      return { kind: 'connection.close', close };
    }
    if (isMethod(m, M.ChannelClose)) {
      client.sendMethod(1, M.ChannelCloseOk);
      return { kind: 'channel.close', close: decodeClose(m) };
    }
    expect([m.classId, m.methodId], 'basic.get-ok').toEqual([...M.BasicGetOk]);
    const header = await client.nextFrame();
    const size = Number(header.payload.readBigUInt64BE(4));
    const parts: Buffer[] = [];
    for (let got = 0; got < size; ) {
      const f = await client.nextFrame();
      parts.push(f.payload);
      got += f.payload.length;
    }
    return { kind: 'delivered', properties: Buffer.from(header.payload.subarray(12)), body: Buffer.concat(parts) };
  } finally {
    client.destroy();
  }
}

const INTERNAL_ERROR: Close = { code: 541, text: 'INTERNAL_ERROR', method: [0, 0] };

describe.concurrent('content headers', () => {
  describe('properties that cannot be decoded → connection.close 541 INTERNAL_ERROR', () => {
    it.each([
      ['an unknown type tag in the headers', headers(entry('5a'))],
      ["the tag 'U' (not in RabbitMQ's set)", headers(entry('55 0000'))],
      ['an unknown type tag inside an array', headers(entry('41 00000001 5a'))],
      ['a string longer than the headers table', headers(entry('53 00000009 6162'))],
      ['a headers table longer than the properties', hex('2000 00000032 0161')],
      ['a table key running past the table', headers(hex('09 61'))],
      ['a nested table longer than its parent', headers(entry('46 00000010 016b 56'))],
      ['a byte left over after the property list', hex('8000 01 61 99')],
      ['a content-type cut short', hex('8000 05 61')],
      ['a timestamp cut short', hex('0040 000000')],
      ['a continuation flag word (RabbitMQ reads one flag word only)', hex('0001 0000')],
      ['no property flags at all', Buffer.alloc(0)],
      ['one byte of property flags', hex('00')],
    ])('%s', async (_name, properties) => {
      const outcome = await publishAndGet(basicHeader(1, properties));
      expect(outcome).toEqual({ kind: 'connection.close', close: INTERNAL_ERROR });
    });
  });

  describe('properties that decode are delivered byte for byte', () => {
    it.each([
      ['every field type of the headers table', headers(hex(
        '0174 7401  0162 62fe  0142 42fe  0173 73fffe  0175 75fffe  0149 49fffffffe  0169 69fffffffe' +
        '016c 6cfffffffffffffffe  0166 663fc00000  0164 643ff8000000000000  0144 44020000013a' +
        '0153 5300000002 6869  0178 7800000002 00ff  0141 4100000003 620156  0154 54000000006553f100' +
        '0146 4600000004 01614201  0156 56',
      ))],
      ["the tag 'L', read as a signed 64-bit integer", headers(entry('4c 0000000000000001'))],
      ['a boolean octet other than 0 and 1', headers(entry('74 02'))],
      ['flag bit 0 (continuation) set with nothing after it', hex('0001')],
      ['flag bit 1 set', hex('0002')],
      ['a content-type that is not UTF-8', hex('8000 02 fffe')],
      ['a header key that is not UTF-8', headers(hex('02 fffe 56'))],
      [`headers nested 64 levels deep`, headers(nestedEntries(64))],
    ])('%s', async (_name, properties) => {
      const outcome = await publishAndGet(basicHeader(1, properties));
      expect(outcome).toEqual({ kind: 'delivered', properties, body: Buffer.from('x') });
    });
  });

  it.skipIf(!isWarren())('Warren: headers nested deeper than 64 levels → channel.close 406 (RabbitMQ sets no limit)', async () => {
    for (const levels of [65, 5000]) {
      const outcome = await publishAndGet(basicHeader(1, headers(nestedEntries(levels))));
      expect(outcome).toEqual({
        kind: 'channel.close',
        close: { code: 406, text: 'PRECONDITION_FAILED - invalid message: field tables nested deeper than 64 levels in the properties', method: [60, 40] },
      });
    }
  });

  describe('property values RabbitMQ refuses → channel.close 406 PRECONDITION_FAILED', () => {
    const expiration = (s: string): Buffer => Buffer.concat([hex('0100'), Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
    it.each([
      ['delivery-mode 0', hex('1000 00'), 'invalid message: {delivery_mode_unknown,0}'],
      ['delivery-mode 7', hex('1000 07'), 'invalid message: {delivery_mode_unknown,7}'],
      ['expiration with trailing letters', expiration('12abc'), `invalid expiration '12abc': {leftover_string,"abc"}`],
      ['expiration with a trailing space', expiration('5 '), `invalid expiration '5 ': {leftover_string," "}`],
      ['expiration with a fraction', expiration('1.5'), `invalid expiration '1.5': {leftover_string,".5"}`],
      ['expiration in hex', expiration('0x10'), `invalid expiration '0x10': {leftover_string,"x10"}`],
      ['an empty expiration', expiration(''), "invalid expiration '': no_integer"],
      ['expiration with a leading space', expiration(' 5'), "invalid expiration ' 5': no_integer"],
      ['expiration of a sign alone', expiration('-'), "invalid expiration '-': no_integer"],
      ['a negative expiration', expiration('-5'), "invalid expiration '-5': {value_negative,-5}"],
      ['an expiration over ten years', expiration('400000000000'), "invalid expiration '400000000000': {value_too_large,400000000000}"],
      // the checks run in RabbitMQ's order: expiration before delivery-mode
      ['a bad expiration and a bad delivery-mode', hex('1100 03 01 61'), "invalid expiration 'a': no_integer"],
    ])('%s', async (_name, properties, text) => {
      const outcome = await publishAndGet(basicHeader(1, properties));
      expect(outcome).toEqual({
        kind: 'channel.close',
        close: { code: 406, text: `PRECONDITION_FAILED - ${text}`, method: [60, 40] },
      });
    });

    it.each([
      ['an expiration with a plus sign', expiration('+12')],
      ['an expiration of exactly ten years', expiration('315360000000')],
      ['delivery-mode 1', hex('1000 01')],
      ['delivery-mode 2', hex('1000 02')],
    ])('accepted: %s', async (_name, properties) => {
      expect(await publishAndGet(basicHeader(1, properties))).toEqual({ kind: 'delivered', properties, body: Buffer.from('x') });
    });
  });

  describe('the content header frame itself', () => {
    it('shorter than class, weight and body size → 501 FRAME_ERROR unknown_frame', async () => {
      const outcome = await publishAndGet(Buffer.alloc(11));
      expect(outcome).toEqual({
        kind: 'connection.close',
        close: { code: 501, text: 'FRAME_ERROR - type 2, all octets = <<0,0,0,0,0,0,0,0,0,0,0>>: unknown_frame', method: [0, 0] },
      });
    });

    it('class, weight and body size but no property flags → 541 INTERNAL_ERROR', async () => {
      expect(await publishAndGet(basicHeader(1, Buffer.alloc(0)))).toEqual({ kind: 'connection.close', close: INTERNAL_ERROR });
    });

    it('a weight other than zero → 505 UNEXPECTED_FRAME', async () => {
      expect(await publishAndGet(basicHeader(1, hex('0000'), 60, 1))).toEqual({
        kind: 'connection.close',
        close: { code: 505, text: 'UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead', method: [60, 40] },
      });
    });

    it('another class than the method’s → 505 UNEXPECTED_FRAME', async () => {
      expect(await publishAndGet(basicHeader(1, hex('0000'), 50))).toEqual({
        kind: 'connection.close',
        close: { code: 505, text: 'UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead', method: [60, 40] },
      });
    });
  });
});
