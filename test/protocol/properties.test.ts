import { describe, expect, it } from 'vitest';
import { AmqpConnectionError } from '../../src/protocol/errors.js';
import { FieldTableCheck, MAX_FIELD_NESTING } from '../../src/protocol/field-table.js';
import type { FieldTable } from '../../src/protocol/field-types.js';
import {
  basicPropertyOffset,
  BasicPropertyFlag,
  checkBasicProperties,
  decodeBasicProperties,
  encodeBasicProperties,
  type BasicProperties,
} from '../../src/protocol/generated/properties.js';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import { seededRandom } from '../helpers/random.js';
import { amqplibDefs, sampleTable, toAmqplibTable } from './helpers.js';

const ALL: Required<BasicProperties> = {
  contentType: 'application/json',
  contentEncoding: 'gzip',
  headers: sampleTable(),
  deliveryMode: 2,
  priority: 7,
  correlationId: 'corr-ünï',
  replyTo: 'amq.rabbitmq.reply-to',
  expiration: '60000',
  messageId: 'msg-1',
  timestamp: 1700000000n,
  type: 'order.created',
  userId: 'guest',
  appId: 'warren-test',
  clusterId: 'c1',
};
const KEYS = Object.keys(ALL) as (keyof BasicProperties)[];

/** amqplib's encodeProperties gives a whole content header frame; the properties start at 7 + 12. */
function amqplibRaw(p: BasicProperties): Buffer {
  const fields: Record<string, unknown> = { ...p };
  if (p.headers) fields.headers = toAmqplibTable(p.headers);
  if (p.timestamp !== undefined) fields.timestamp = Number(p.timestamp);
  const frame = amqplibDefs.encodeProperties(60, 1, 0, fields);
  return frame.subarray(19, frame.length - 1);
}

describe('basic properties', () => {
  it('round-trips all 14 properties, with a fixed-shape result', () => {
    const raw = encodeBasicProperties(ALL);
    expect(raw.readUInt16BE(0)).toBe(0xfffc); // 14 flags, no continuation
    const decoded = decodeBasicProperties(raw);
    expect(decoded).toEqual(ALL);
    expect(Object.keys(decoded)).toEqual(KEYS);
  });

  it('round-trips every single property alone and each subset of a sliding window', () => {
    for (let i = 0; i < KEYS.length; i++) {
      for (let j = i; j < KEYS.length; j++) {
        const p: BasicProperties = {};
        for (let k = i; k <= j; k++) (p as Record<string, unknown>)[KEYS[k]!] = ALL[KEYS[k]!];
        const decoded = decodeBasicProperties(encodeBasicProperties(p));
        for (const key of KEYS) expect(decoded[key], key).toEqual(p[key]);
      }
    }
  });

  it('empty properties are two zero flag octets; null/undefined mean absent', () => {
    expect(encodeBasicProperties({})).toEqual(Buffer.from([0, 0]));
    expect(encodeBasicProperties({ contentType: undefined, priority: null as unknown as number })).toEqual(Buffer.from([0, 0]));
    const d = decodeBasicProperties(Buffer.from([0, 0]));
    for (const key of KEYS) expect(d[key]).toBeUndefined();
  });

  it('byte vector: delivery-mode 2 + content-type', () => {
    expect(encodeBasicProperties({ contentType: 'a', deliveryMode: 2 }).toString('hex')).toBe('9000' + '0161' + '02');
  });

  it('is byte-identical to amqplib and decodes amqplib output', () => {
    const ours = encodeBasicProperties(ALL);
    const theirs = amqplibRaw(ALL);
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
    expect(decodeBasicProperties(theirs)).toEqual(ALL);
    const subset = { deliveryMode: 1, expiration: '10', appId: 'x' };
    expect(encodeBasicProperties(subset)).toEqual(amqplibRaw(subset));
  });

  it('ignores flag bits 1 and 0 (no continuation word), as RabbitMQ does', () => {
    const raw = encodeBasicProperties({ contentType: 'a', clusterId: 'z' });
    const withBits = Buffer.concat([Buffer.from([raw[0]!, raw[1]! | 3]), raw.subarray(2)]);
    expect(decodeBasicProperties(withBits)).toEqual(decodeBasicProperties(raw));
    expect(basicPropertyOffset(withBits, BasicPropertyFlag.ClusterId)).toBe(basicPropertyOffset(raw, BasicPropertyFlag.ClusterId));
  });

  it('truncated input → 501 FRAME_ERROR', () => {
    const raw = encodeBasicProperties(ALL);
    for (let len = 0; len < raw.length; len++) {
      let err: unknown;
      try {
        decodeBasicProperties(raw.subarray(0, len));
      } catch (e) {
        err = e;
      }
      expect(err, `len ${len}`).toBeInstanceOf(AmqpConnectionError);
      expect((err as AmqpConnectionError).replyCode).toBe(ReplyCode.FrameError);
      expect((err as AmqpConnectionError).replyText).toContain('cannot decode basic properties');
    }
  });

  it('basicPropertyOffset finds a property without decoding the ones before it', () => {
    const raw = encodeBasicProperties(ALL);
    expect(raw[basicPropertyOffset(raw, BasicPropertyFlag.DeliveryMode)]).toBe(2);
    expect(raw[basicPropertyOffset(raw, BasicPropertyFlag.Priority)]).toBe(7);
    const exp = basicPropertyOffset(raw, BasicPropertyFlag.Expiration);
    expect(raw.toString('utf8', exp + 1, exp + 1 + raw[exp]!)).toBe('60000');
    const clusterId = basicPropertyOffset(raw, BasicPropertyFlag.ClusterId);
    expect(raw.toString('utf8', clusterId + 1, clusterId + 1 + raw[clusterId]!)).toBe('c1');
    const sparse = encodeBasicProperties({ priority: 3 });
    expect(basicPropertyOffset(sparse, BasicPropertyFlag.DeliveryMode)).toBe(-1);
    expect(sparse[basicPropertyOffset(sparse, BasicPropertyFlag.Priority)]).toBe(3);
  });

  it('rejects an over-long shortstr property', () => {
    expect(() => encodeBasicProperties({ messageId: 'x'.repeat(256) })).toThrow(RangeError);
  });
});

describe('checkBasicProperties (what RabbitMQ 3.10 can decode, checked without decoding)', () => {
  const check = (raw: Buffer): FieldTableCheck => checkBasicProperties(raw, 0, raw.length);

  it('accepts every property set that encodes, and no properties at all', () => {
    expect(check(encodeBasicProperties(ALL))).toBe(FieldTableCheck.Ok);
    expect(check(encodeBasicProperties({}))).toBe(FieldTableCheck.Ok);
    for (const k of KEYS) expect(check(encodeBasicProperties({ [k]: ALL[k] })), k).toBe(FieldTableCheck.Ok);
  });

  it('checks only the given range of a larger buffer', () => {
    const raw = encodeBasicProperties(ALL);
    const framed = Buffer.concat([Buffer.from([1, 2, 3]), raw, Buffer.from([0xce])]);
    expect(checkBasicProperties(framed, 3, 3 + raw.length)).toBe(FieldTableCheck.Ok);
  });

  it('refuses every truncation and any byte left over', () => {
    const raw = encodeBasicProperties(ALL);
    for (let len = 0; len < raw.length; len++) expect(check(raw.subarray(0, len)), `len ${len}`).toBe(FieldTableCheck.Malformed);
    expect(check(Buffer.concat([raw, Buffer.from([0])]))).toBe(FieldTableCheck.Malformed);
  });

  it('flag bits 1 and 0 are ignored: flags 0x0001 alone pass, a continuation word after them is a leftover', () => {
    // observed on RabbitMQ 3.10: <<0,1>> is delivered as is; <<0,1,0,0>> closes the connection with 541
    expect(check(Buffer.from([0x00, 0x01]))).toBe(FieldTableCheck.Ok);
    expect(check(Buffer.from([0x00, 0x02]))).toBe(FieldTableCheck.Ok);
    expect(check(Buffer.from([0x00, 0x01, 0x00, 0x00]))).toBe(FieldTableCheck.Malformed);
  });

  it('a malformed headers table makes the properties malformed; a too deep one is reported as such', () => {
    const headers = (body: Buffer): Buffer => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      return Buffer.concat([Buffer.from([0x20, 0x00]), len, body]);
    };
    expect(check(headers(Buffer.from([1, 0x61, 0x5a])))).toBe(FieldTableCheck.Malformed); // tag 'Z'
    let deep: FieldTable = new Map();
    for (let i = 0; i < MAX_FIELD_NESTING; i++) deep = new Map([['k', { type: 'F', value: deep }]]);
    expect(check(encodeBasicProperties({ headers: deep, deliveryMode: 2 }))).toBe(FieldTableCheck.TooDeep);
  });

  it('what it accepts always decodes (10,000 damaged property lists)', () => {
    const r = seededRandom(11);
    const base = encodeBasicProperties(ALL);
    for (let i = 0; i < 10000; i++) {
      let raw = Buffer.from(base);
      const damages = 1 + Math.floor(r() * 3);
      for (let d = 0; d < damages; d++) raw[Math.floor(r() * raw.length)] = Math.floor(r() * 256);
      if (r() < 0.3) raw = raw.subarray(0, Math.floor(r() * raw.length));
      if (check(raw) === FieldTableCheck.Ok) expect(() => decodeBasicProperties(raw), raw.toString('hex')).not.toThrow();
    }
  });
});
