import { describe, expect, it } from 'vitest';
import { AmqpConnectionError } from '../../src/protocol/errors.js';
import * as constants from '../../src/protocol/generated/constants.js';
import { ClassId, FRAME_END, MethodId, methodName } from '../../src/protocol/generated/constants.js';
import * as methods from '../../src/protocol/generated/methods.js';
import { decodeMethod, encodeMethodFrame, methodHasContent, type Method } from '../../src/protocol/generated/methods.js';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import { allMethods, amqplibDefs, camel, sampleArgs, toAmqplibTable } from './helpers.js';

/** payload of a complete single frame, after checking its envelope */
function payloadOf(frame: Buffer, channel: number): Buffer {
  expect(frame[0]).toBe(1);
  expect(frame.readUInt16BE(1)).toBe(channel);
  const size = frame.readUInt32BE(3);
  expect(frame.length).toBe(size + 8);
  expect(frame[frame.length - 1]).toBe(FRAME_END);
  return frame.subarray(7, 7 + size);
}

function catchError(fn: () => unknown): AmqpConnectionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AmqpConnectionError);
    return err as AmqpConnectionError;
  }
  throw new Error('expected an AmqpConnectionError');
}

describe('generated constants', () => {
  it('has every method id as (classId << 16) | methodId and its spec name', () => {
    expect(allMethods.length).toBe(64);
    const ids = constants.MethodId as Record<string, number>;
    for (const m of allMethods) {
      expect(ids[m.key], m.key).toBe(m.id);
      expect(methodName(m.id)).toBe(m.fullName);
    }
    expect(MethodId.BasicPublish).toBe(0x003c0028);
    expect(MethodId.ConnectionStart).toBe(0x000a000a);
    expect(MethodId.ConnectionBlocked).toBe(0x000a003c);
    expect(MethodId.ConnectionUpdateSecretOk).toBe(0x000a0047);
    expect(MethodId.ExchangeUnbindOk).toBe(0x00280033);
    expect(MethodId.BasicNack).toBe(0x003c0078);
    expect(MethodId.ConfirmSelectOk).toBe(0x0055000b);
    expect(methodName(0x003c00c8)).toBe('unknown method 60/200');
  });

  it('has the frame and class constants', () => {
    expect(constants.FrameType).toEqual({ Method: 1, Header: 2, Body: 3, Heartbeat: 8 });
    expect([constants.FRAME_END, constants.FRAME_MIN_SIZE, constants.FRAME_HEADER_SIZE]).toEqual([0xce, 4096, 7]);
    expect(ClassId).toEqual({ Connection: 10, Channel: 20, Exchange: 40, Queue: 50, Basic: 60, Confirm: 85, Tx: 90 });
    expect(constants.PROTOCOL_HEADER).toEqual(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
  });

  it('flags exactly the four content-bearing methods', () => {
    const withContent = allMethods.filter((m) => methodHasContent(m.id)).map((m) => m.fullName);
    expect(withContent).toEqual(['basic.publish', 'basic.return', 'basic.deliver', 'basic.get-ok']);
  });
});

describe('method codec round trip (every method, from the spec JSON)', () => {
  for (const m of allMethods) {
    it(`${m.fullName}`, () => {
      for (const seed of [0, 1, 7]) {
        const args = sampleArgs(m.method, seed);
        const method = { id: m.id, args } as unknown as Method;
        const frame = encodeMethodFrame(3, method);
        // the per-method encoder produces the same bytes
        const perMethod = (methods as unknown as Record<string, (ch: number, a: unknown) => Buffer>)[`encode${m.key}Frame`]!;
        expect(perMethod(3, args)).toEqual(frame);
        const decoded = decodeMethod(payloadOf(frame, 3));
        expect(decoded.id).toBe(m.id);
        expect(decoded.args).toEqual(args);
        // fixed shape: every field present, in spec order
        expect(Object.keys(decoded.args)).toEqual(m.method.fields.map((f) => camel(f.name)));
      }
    });
  }
});

describe('amqplib oracle', () => {
  /** our args → amqplib's field names (positional: both follow the spec order) and value forms */
  function toAmqplibFields(m: (typeof allMethods)[number], args: Record<string, unknown>): Record<string, unknown> {
    const info = amqplibDefs.info(m.id);
    const out: Record<string, unknown> = {};
    m.method.fields.forEach((f, i) => {
      const v = args[camel(f.name)];
      out[info.args[i]!.name] = f.type === 'table' ? toAmqplibTable(v as Map<string, never>) : v;
    });
    return out;
  }

  for (const m of allMethods) {
    it(`${m.fullName}: byte-identical to amqplib, and each side decodes the other`, () => {
      const args = sampleArgs(m.method, 5);
      const ours = encodeMethodFrame(9, { id: m.id, args } as unknown as Method);
      const theirs = amqplibDefs.encodeMethod(m.id, 9, toAmqplibFields(m, args));
      expect(ours.toString('hex')).toBe(theirs.toString('hex'));
      // amqplib frame → our decoder
      expect(decodeMethod(payloadOf(theirs, 9)).args).toEqual(args);
      // our frame → amqplib decoder (non-table fields compared; amqplib untypes tables)
      const back = amqplibDefs.decode(m.id, ours.subarray(11, ours.length - 1));
      const info = amqplibDefs.info(m.id);
      m.method.fields.forEach((f, i) => {
        if (f.type !== 'table') expect(back[info.args[i]!.name], f.name).toEqual(args[camel(f.name)]);
      });
    });
  }
});

describe('decodeMethod errors', () => {
  it('unknown class/method → 540 NOT_IMPLEMENTED naming the ids', () => {
    const err = catchError(() => decodeMethod(Buffer.from([0, 60, 0, 200])));
    expect(err.replyCode).toBe(ReplyCode.NotImplemented);
    expect(err.classId).toBe(60);
    expect(err.methodId).toBe(200);
    expect(err.replyText).toContain('unknown method');
    const err2 = catchError(() => decodeMethod(Buffer.from([0, 99, 0, 10])));
    expect(err2.replyCode).toBe(ReplyCode.NotImplemented);
  });

  it('payload shorter than class+method → 501', () => {
    expect(catchError(() => decodeMethod(Buffer.from([0, 60, 0]))).replyCode).toBe(ReplyCode.FrameError);
  });

  it('every truncation of every method → 501 FRAME_ERROR "cannot decode <method>" with its ids', () => {
    for (const m of allMethods) {
      const frame = encodeMethodFrame(1, { id: m.id, args: sampleArgs(m.method, 2) } as unknown as Method);
      const payload = payloadOf(frame, 1);
      for (let len = 4; len < payload.length; len++) {
        const err = catchError(() => decodeMethod(payload.subarray(0, len)));
        expect(err.replyCode).toBe(ReplyCode.FrameError);
        expect(err.replyText).toContain(`cannot decode ${m.fullName}`);
        expect([err.classId, err.methodId]).toEqual([m.classId, m.methodId]);
      }
    }
  });

  it('trailing bytes after the arguments → 501 (RabbitMQ matches the exact binary)', () => {
    const frame = methods.encodeBasicAckFrame(1, { deliveryTag: 1, multiple: false });
    const payload = Buffer.concat([payloadOf(frame, 1), Buffer.from([0])]);
    const err = catchError(() => decodeMethod(payload));
    expect(err.replyCode).toBe(ReplyCode.FrameError);
    expect(err.replyText).toMatch(/cannot decode basic\.ack: 1 unexpected trailing/);
  });

  it('a bad tag inside an arguments table → 501 naming the method', () => {
    const frame = methods.encodeQueueDeclareFrame(1, {
      queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false,
      arguments: new Map([['x', { type: 'V', value: null }]]),
    });
    const payload = Buffer.from(payloadOf(frame, 1));
    payload[payload.length - 1] = 0x51; // 'Q' is no field type
    const err = catchError(() => decodeMethod(payload));
    expect(err.replyCode).toBe(ReplyCode.FrameError);
    expect(err.replyText).toContain("cannot decode queue.declare: unknown field value type 'Q'");
  });
});

describe('shortstr arguments must be UTF-8 (RabbitMQ: 501 "Malformed UTF-8 in shortstr", no class or method id)', () => {
  /** queue.declare payload whose queue name is `name` (raw bytes) */
  const declare = (name: Buffer, truncate = 0): Buffer => {
    const payload = payloadOf(
      methods.encodeQueueDeclareFrame(1, { queue: 'Q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: new Map() }),
      1,
    );
    // reserved-1 (2) then the name: rewrite it
    const out = Buffer.concat([payload.subarray(0, 6), Buffer.from([name.length]), name, payload.subarray(8)]);
    return out.subarray(0, out.length - truncate);
  };

  it.each([
    ['an invalid byte', [0x71, 0xff]],
    ['a lone continuation byte', [0x80]],
    ['an overlong NUL', [0xc0, 0x80]],
    ['a sequence cut short', [0xe2, 0x82]],
    ['an encoded surrogate (RabbitMQ 3.10 lets it through)', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF (RabbitMQ 3.10 lets it through)', [0xf4, 0x90, 0x80, 0x80]],
  ])('%s → 501', (_name, bytes) => {
    const err = catchError(() => decodeMethod(declare(Buffer.from(bytes))));
    expect(err.replyCode).toBe(ReplyCode.FrameError);
    expect(err.replyText).toBe('Malformed UTF-8 in shortstr');
    expect([err.classId, err.methodId]).toEqual([0, 0]);
  });

  it('valid multi-byte names decode', () => {
    for (const name of ['ключ', '€', '😀', '\u0000', '\uffff', '\u{10ffff}']) {
      const m = decodeMethod(declare(Buffer.from(name, 'utf8')));
      expect(m.id === MethodId.QueueDeclare && m.args.queue).toBe(name);
    }
  });

  it('a frame that cannot be split into its arguments is "cannot decode", whatever its strings', () => {
    const err = catchError(() => decodeMethod(declare(Buffer.from([0xff]), 1)));
    expect(err.replyText).toMatch(/^cannot decode queue\.declare/);
  });

  it('basic.publish is checked too (RabbitMQ skips content-bearing methods; see docs/differences.md)', () => {
    const payload = payloadOf(methods.encodeBasicPublishFrame(1, { exchange: '', routingKey: 'k', mandatory: false, immediate: false }), 1);
    payload[payload.length - 2] = 0xff; // the routing key's one byte
    expect(catchError(() => decodeMethod(payload)).replyText).toBe('Malformed UTF-8 in shortstr');
  });
});

describe('encoders', () => {
  it('basic.publish byte vector', () => {
    const frame = methods.encodeBasicPublishFrame(1, { exchange: 'ex', routingKey: 'rk', mandatory: true, immediate: false });
    expect(frame.toString('hex')).toBe('0100010000000d' + '003c0028' + '0000' + '02' + '6578' + '02' + '726b' + '01' + 'ce');
  });

  it('bits pack LSB first into one octet (queue.declare) and reserved fields default to zero/empty', () => {
    const frame = methods.encodeQueueDeclareFrame(0, {
      queue: '', passive: true, durable: false, exclusive: true, autoDelete: false, noWait: true, arguments: new Map(),
    });
    // reserved-1 short 0, queue "", bits 0b10101, empty table
    expect(payloadOf(frame, 0).toString('hex')).toBe('0032000a' + '0000' + '00' + '15' + '00000000');
    expect(payloadOf(methods.encodeChannelOpenOkFrame(1, {}), 1).toString('hex')).toBe('0014000b' + '00000000');
    expect(payloadOf(methods.encodeConnectionOpenOkFrame(0, {}), 0).toString('hex')).toBe('000a0029' + '00');
    expect(payloadOf(methods.encodeBasicGetEmptyFrame(1, {}), 1).toString('hex')).toBe('003c0048' + '00');
  });

  it('longlong uses the full 53-bit range', () => {
    const tag = Number.MAX_SAFE_INTEGER;
    const frame = methods.encodeBasicAckFrame(1, { deliveryTag: tag, multiple: true });
    expect(payloadOf(frame, 1).readBigUInt64BE(4)).toBe(BigInt(tag));
    expect(decodeMethod(payloadOf(frame, 1))).toEqual({ id: MethodId.BasicAck, args: { deliveryTag: tag, multiple: true } });
  });

  it('reply-text is cut to 255 octets on a character boundary; other long shortstrs throw', () => {
    const longText = 'NOT_FOUND - ' + 'é'.repeat(200);
    const frame = methods.encodeChannelCloseFrame(1, { replyCode: 404, replyText: longText, classId: 50, methodId: 10 });
    const decoded = decodeMethod(payloadOf(frame, 1));
    const text = (decoded.args as { replyText: string }).replyText;
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(255);
    expect(longText.startsWith(text)).toBe(true);
    expect(() => methods.encodeBasicConsumeOkFrame(1, { consumerTag: 'x'.repeat(256) })).toThrow(RangeError);
  });

  it('narrows Method by id for handlers', () => {
    const m = decodeMethod(payloadOf(methods.encodeBasicQosFrame(1, { prefetchSize: 0, prefetchCount: 10, global: false }), 1));
    if (m.id === MethodId.BasicQos) expect(m.args.prefetchCount).toBe(10);
    else throw new Error('wrong id');
  });
});
