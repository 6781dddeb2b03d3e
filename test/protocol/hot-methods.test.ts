import { describe, expect, it } from 'vitest';
import { decodeHotMethod, HotMethods } from '../../src/protocol/hot-methods.js';
import { MethodId } from '../../src/protocol/generated/constants.js';
import { decodeMethod, encodeMethodFrame, type Method } from '../../src/protocol/generated/methods.js';

/** The method frame's payload, inside a bigger buffer (as in a socket chunk) at an odd offset. */
function inChunk(method: Method): { buf: Buffer; start: number; end: number } {
  const frame = encodeMethodFrame(1, method);
  const payload = frame.subarray(7, frame.length - 1);
  const buf = Buffer.concat([Buffer.from('junk-before'), payload, Buffer.from('after')]);
  return { buf, start: 11, end: 11 + payload.length };
}

function hot(h: HotMethods, method: Method): Method | null {
  const { buf, start, end } = inChunk(method);
  const got = decodeHotMethod(h, buf, start, end);
  // whatever it decodes must equal the generated decoder's result
  if (got !== null) expect({ id: got.id, args: { ...got.args } }).toEqual(decodeMethod(buf.subarray(start, end)));
  return got;
}

describe('decodeHotMethod', () => {
  it('decodes basic.publish like the generated decoder, for changing exchanges and keys', () => {
    const h = new HotMethods();
    const cases: [string, string, boolean, boolean][] = [
      ['', 'q1', false, false],
      ['', 'q1', true, false],
      ['amq.topic', 'a.b.c', false, true],
      ['amq.topic', 'a.b.d', true, true],
      ['ex', 'a.b.d', false, false],
      ['ëxchänge', 'ключ', false, false],
      ['', '', false, false],
      ['x'.repeat(255), 'k'.repeat(255), true, false],
      ['', 'q1', false, false],
    ];
    for (const [exchange, routingKey, mandatory, immediate] of cases) {
      const m = hot(h, { id: MethodId.BasicPublish, args: { exchange, routingKey, mandatory, immediate } });
      expect(m).toBe(h.publish); // the reused object
      expect(m!.args).toMatchObject({ exchange, routingKey, mandatory, immediate });
    }
  });

  it('reuses the previous string when the bytes repeat', () => {
    const h = new HotMethods();
    hot(h, { id: MethodId.BasicPublish, args: { exchange: 'ex', routingKey: 'key', mandatory: false, immediate: false } });
    const first = h.publish.args.routingKey;
    hot(h, { id: MethodId.BasicPublish, args: { exchange: 'ex', routingKey: 'key', mandatory: false, immediate: false } });
    expect(h.publish.args.routingKey).toBe(first);
    hot(h, { id: MethodId.BasicPublish, args: { exchange: 'ex', routingKey: 'kez', mandatory: false, immediate: false } });
    expect(h.publish.args.routingKey).toBe('kez');
  });

  it('a name that is not UTF-8 is left to the generated decoder (which refuses it), and is not cached', () => {
    const h = new HotMethods();
    hot(h, { id: MethodId.BasicPublish, args: { exchange: '', routingKey: 'k\u00e9', mandatory: false, immediate: false } });
    const { buf, start, end } = inChunk({ id: MethodId.BasicPublish, args: { exchange: '', routingKey: 'k\u00e9', mandatory: false, immediate: false } });
    buf[end - 2] = 0xff; // é is c3 a9: now c3 ff
    expect(decodeHotMethod(h, buf, start, end)).toBeNull();
    expect(() => decodeMethod(buf.subarray(start, end))).toThrow('Malformed UTF-8 in shortstr');
    buf[end - 2] = 0xa9;
    expect(decodeHotMethod(h, buf, start, end)!.args).toMatchObject({ routingKey: 'k\u00e9' });
    // the exchange too
    const ex = inChunk({ id: MethodId.BasicPublish, args: { exchange: 'x', routingKey: 'k', mandatory: false, immediate: false } });
    ex.buf[ex.start + 7] = 0xc0;
    expect(decodeHotMethod(h, ex.buf, ex.start, ex.end)).toBeNull();
  });

  it('decodes basic.ack, basic.nack and basic.reject', () => {
    const h = new HotMethods();
    for (const deliveryTag of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      for (const multiple of [false, true]) {
        expect(hot(h, { id: MethodId.BasicAck, args: { deliveryTag, multiple } })).toBe(h.ack);
        for (const requeue of [false, true]) {
          expect(hot(h, { id: MethodId.BasicNack, args: { deliveryTag, multiple, requeue } })).toBe(h.nack);
        }
      }
      for (const requeue of [false, true]) expect(hot(h, { id: MethodId.BasicReject, args: { deliveryTag, requeue } })).toBe(h.reject);
    }
  });

  it('leaves other methods and anything malformed to the generated decoder', () => {
    const h = new HotMethods();
    expect(hot(h, { id: MethodId.BasicQos, args: { prefetchSize: 0, prefetchCount: 10, global: false } })).toBeNull();
    const { buf, start, end } = inChunk({ id: MethodId.BasicPublish, args: { exchange: 'ex', routingKey: 'rk', mandatory: false, immediate: false } });
    // truncated anywhere, or with a trailing byte: null (decodeMethod then names the error)
    for (let e = start; e < end; e++) expect(decodeHotMethod(h, buf, start, e)).toBeNull();
    expect(decodeHotMethod(h, buf, start, end + 1)).toBeNull();
    const ack = inChunk({ id: MethodId.BasicAck, args: { deliveryTag: 5, multiple: false } });
    expect(decodeHotMethod(h, ack.buf, ack.start, ack.end - 1)).toBeNull();
    // a delivery tag from 2^53 on is not exact as a number: the generic path decides
    const big = Buffer.from(ack.buf.subarray(ack.start, ack.end));
    big.writeUInt32BE(0x0020_0000, 4);
    expect(decodeHotMethod(h, big, 0, big.length)).toBeNull();
  });
});
