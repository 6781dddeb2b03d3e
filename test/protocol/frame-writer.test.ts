import { describe, expect, it } from 'vitest';
import { FrameReader, type Frame } from '../../src/protocol/frame-reader.js';
import {
  deliverySize,
  encodeBodyFrames,
  encodeContentHeaderFrame,
  encodeGetOkHead,
  encodeReturnHead,
  HEARTBEAT_FRAME,
  ShortstrBytes,
  writeDelivery,
} from '../../src/protocol/frame-writer.js';
import { MethodId } from '../../src/protocol/generated/constants.js';
import { decodeMethod, encodeBasicDeliverFrame, encodeBasicGetOkFrame, encodeBasicReturnFrame } from '../../src/protocol/generated/methods.js';
import { encodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { amqplibDefs } from './helpers.js';

function frames(buf: Buffer | Buffer[]): Frame[] {
  const reader = new FrameReader(0);
  for (const b of Array.isArray(buf) ? buf : [buf]) reader.push(b);
  const out: Frame[] = [];
  for (let f = reader.next(); f !== null; f = reader.next()) out.push(f);
  expect(reader.bufferedBytes).toBe(0);
  return out;
}

/** A delivery as the broker encodes it (writeDelivery), into a buffer of exactly deliverySize(). */
function delivery(channel: number, tag: string, deliveryTag: number, redelivered: boolean, exchange: string, routingKey: string, rawProperties: Buffer, bodySize: number, inlineBody: Buffer | null = null): Buffer {
  const t = new ShortstrBytes('consumer-tag').of(tag);
  const ex = new ShortstrBytes('exchange').of(exchange);
  const rk = new ShortstrBytes('routing-key').of(routingKey);
  // encoded at an offset inside a bigger buffer, as into the outbound slab
  const size = deliverySize(t, ex, rk, rawProperties, inlineBody?.length ?? 0);
  const buf = Buffer.alloc(size + 10, 0xaa);
  const end = writeDelivery(buf, 5, channel, t, deliveryTag, redelivered, ex, rk, rawProperties, bodySize, inlineBody);
  expect(end).toBe(5 + size);
  return buf.subarray(5, end);
}

const props = encodeBasicProperties({ contentType: 'application/json', deliveryMode: 2, headers: new Map([['a', { type: 'I', value: 1 }]]) });

describe('frame writer', () => {
  it('HEARTBEAT_FRAME', () => {
    expect(HEARTBEAT_FRAME.toString('hex')).toBe('0800000000000' + '0ce');
  });

  it('content header frame: class, weight 0, body size u64, raw properties verbatim — same bytes as amqplib', () => {
    const f = encodeContentHeaderFrame(5, 60, 2 ** 40 + 3, props);
    expect(f.subarray(0, 7).toString('hex')).toBe('02' + '0005' + (12 + props.length).toString(16).padStart(8, '0'));
    expect(f.subarray(7, 19).toString('hex')).toBe('003c' + '0000' + '0000010000000003');
    expect(f.subarray(19, f.length - 1)).toEqual(props);
    expect(f[f.length - 1]).toBe(0xce);
    const theirs = amqplibDefs.encodeProperties(60, 5, 2 ** 40 + 3, { contentType: 'application/json', deliveryMode: 2, headers: { a: { '!': 'int32', value: 1 } } });
    expect(f).toEqual(theirs);
  });

  it('body frames: each frame ≤ frameMax in total, payloads concatenate to the body', () => {
    const body = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i & 0xff));
    for (const frameMax of [4096, 4097, 5000, 10_008, 10_007, 131072]) {
      const out = encodeBodyFrames(7, body, frameMax);
      for (const f of out) expect(f.length).toBeLessThanOrEqual(frameMax);
      const parsed = frames(out);
      expect(parsed.every((p) => p.type === 3 && p.channel === 7)).toBe(true);
      expect(Buffer.concat(parsed.map((p) => p.payload))).toEqual(body);
      expect(out.length).toBe(Math.ceil(body.length / (frameMax - 8)));
    }
    expect(encodeBodyFrames(1, body, 0)).toHaveLength(1); // frameMax 0: no limit
    expect(encodeBodyFrames(1, Buffer.alloc(0), 4096)).toEqual([]); // empty body: no body frame
    expect(encodeBodyFrames(1, Buffer.alloc(4088), 4096)).toHaveLength(1); // exactly fits
    expect(encodeBodyFrames(1, Buffer.alloc(4089), 4096)).toHaveLength(2);
  });

  it('writeDelivery = basic.deliver frame + content header frame, exactly deliverySize() bytes', () => {
    const head = delivery(2, 'ctag-1', 2 ** 50 + 1, true, 'amq.topic', 'a.b.c', props, 1234);
    const deliver = encodeBasicDeliverFrame(2, { consumerTag: 'ctag-1', deliveryTag: 2 ** 50 + 1, redelivered: true, exchange: 'amq.topic', routingKey: 'a.b.c' });
    expect(head).toEqual(Buffer.concat([deliver, encodeContentHeaderFrame(2, 60, 1234, props)]));
    const amqplibDeliver = amqplibDefs.encodeMethod(MethodId.BasicDeliver, 2, { consumerTag: 'ctag-1', deliveryTag: 2 ** 50 + 1, redelivered: true, exchange: 'amq.topic', routingKey: 'a.b.c' });
    expect(deliver).toEqual(amqplibDeliver);
    const [m, h] = frames(head);
    expect(decodeMethod(m!.payload).args).toEqual({ consumerTag: 'ctag-1', deliveryTag: 2 ** 50 + 1, redelivered: true, exchange: 'amq.topic', routingKey: 'a.b.c' });
    expect(h!.type).toBe(2);
  });

  it('writeDelivery with an inline body appends exactly one body frame (an empty body adds none)', () => {
    const body = Buffer.from('inline body');
    const whole = delivery(5, 'c', 9, false, 'x', 'k', props, body.length, body);
    const head = delivery(5, 'c', 9, false, 'x', 'k', props, body.length);
    expect(whole).toEqual(Buffer.concat([head, encodeBodyFrames(5, body, 4096)[0]!]));
    expect(delivery(5, 'c', 9, false, 'x', 'k', props, 0, Buffer.alloc(0))).toEqual(
      delivery(5, 'c', 9, false, 'x', 'k', props, 0),
    );
  });

  it('encodeGetOkHead and encodeReturnHead match the generated encoders', () => {
    const getOk = encodeGetOkHead(4, 17, false, '', 'q1', 99, props, 0);
    expect(getOk).toEqual(Buffer.concat([
      encodeBasicGetOkFrame(4, { deliveryTag: 17, redelivered: false, exchange: '', routingKey: 'q1', messageCount: 99 }),
      encodeContentHeaderFrame(4, 60, 0, props),
    ]));
    const ret = encodeReturnHead(4, 312, 'NO_ROUTE', 'ex', 'rk', props, 10);
    expect(ret).toEqual(Buffer.concat([
      encodeBasicReturnFrame(4, { replyCode: 312, replyText: 'NO_ROUTE', exchange: 'ex', routingKey: 'rk' }),
      encodeContentHeaderFrame(4, 60, 10, props),
    ]));
    const longText = encodeReturnHead(1, 312, 'x'.repeat(300), 'ex', 'rk', props, 0);
    const [m] = frames(longText);
    expect((decodeMethod(m!.payload).args as { replyText: string }).replyText).toBe('x'.repeat(255));
  });

  it('over-long shortstrs are refused, not silently truncated', () => {
    expect(() => delivery(1, 'c'.repeat(256), 1, false, '', '', props, 0)).toThrow(RangeError);
    expect(() => new ShortstrBytes('routing key').of('é'.repeat(128))).toThrow(/256 bytes/);
  });
});
