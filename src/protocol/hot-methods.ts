/**
 * Allocation-free decoding of the methods a busy channel sees once per message:
 * basic.publish, basic.ack, basic.nack and basic.reject. Each decodes into a Method
 * object owned by the channel and reused for every frame, so a handler must read what
 * it needs from the args before it returns and never keep the object.
 *
 * basic.publish's exchange and routing key are usually the same from one publish to
 * the next: each is compared byte for byte with the previous one and the previous
 * string is reused, so no string is created either.
 *
 * Anything unusual (a short or over-long payload, a delivery tag past 2^53, a name that
 * is not UTF-8) returns null, and the caller uses the generated decoder, which reports the
 * exact error.
 */
import { MethodId } from './generated/constants.js';
import type { Method, MethodById } from './generated/methods.js';
import { isUtf8 } from './primitives.js';

const TWO_32 = 0x1_0000_0000;
/** readU64 refuses tags from 2^53 on: such frames go to the generic decoder */
const MAX_SAFE_HI = 0x1f_ffff;

/** A shortstr decoded before: its bytes and its string. */
class ShortstrCache {
  private bytes: Buffer | null = null;
  private length = -1;
  private value = '';

  /**
   * The string of buf[start, start + len), reusing the previous one when the bytes match;
   * null when the bytes are not UTF-8 (checked only when they differ from the previous ones).
   */
  read(buf: Buffer, start: number, len: number): string | null {
    if (len === this.length) {
      const b = this.bytes!;
      let i = 0;
      while (i < len && b[i] === buf[start + i]) i++;
      if (i === len) return this.value;
    }
    if (!isUtf8(buf, start, start + len)) return null;
    this.length = len;
    const bytes = (this.bytes ??= Buffer.allocUnsafe(255));
    buf.copy(bytes, 0, start, start + len);
    this.value = len === 0 ? '' : buf.toString('utf8', start, start + len);
    return this.value;
  }
}

/** The reused method objects and shortstr caches of one channel. */
export class HotMethods {
  readonly publish: MethodById<typeof MethodId.BasicPublish> = {
    id: MethodId.BasicPublish,
    args: { reserved1: 0, exchange: '', routingKey: '', mandatory: false, immediate: false },
  };
  readonly ack: MethodById<typeof MethodId.BasicAck> = { id: MethodId.BasicAck, args: { deliveryTag: 0, multiple: false } };
  readonly nack: MethodById<typeof MethodId.BasicNack> = {
    id: MethodId.BasicNack,
    args: { deliveryTag: 0, multiple: false, requeue: false },
  };
  readonly reject: MethodById<typeof MethodId.BasicReject> = { id: MethodId.BasicReject, args: { deliveryTag: 0, requeue: false } };
  readonly exchange = new ShortstrCache();
  readonly routingKey = new ShortstrCache();
}

/**
 * The method in buf[start, end) decoded into h's reused objects, or null when it is
 * not one of the hot methods or is not well formed (then use decodeMethod).
 */
export function decodeHotMethod(h: HotMethods, buf: Buffer, start: number, end: number): Method | null {
  if (end - start < 4) return null;
  const id = buf.readUInt32BE(start);
  switch (id) {
    case MethodId.BasicPublish: {
      // reserved-1 u16, exchange shortstr, routing-key shortstr, bits (mandatory, immediate)
      let o = start + 6;
      if (o >= end) return null;
      const nEx = buf[o]!;
      const ex = o + 1;
      o = ex + nEx;
      if (o >= end) return null;
      const nRk = buf[o]!;
      const rk = o + 1;
      o = rk + nRk;
      if (o + 1 !== end) return null;
      const bits = buf[o]!;
      const exchange = h.exchange.read(buf, ex, nEx);
      const routingKey = h.routingKey.read(buf, rk, nRk);
      if (exchange === null || routingKey === null) return null; // not UTF-8: the generic decoder says so
      const args = h.publish.args;
      args.reserved1 = buf.readUInt16BE(start + 4);
      args.exchange = exchange;
      args.routingKey = routingKey;
      args.mandatory = (bits & 1) !== 0;
      args.immediate = (bits & 2) !== 0;
      return h.publish;
    }
    case MethodId.BasicAck:
    case MethodId.BasicNack:
    case MethodId.BasicReject: {
      // delivery-tag u64, bits
      if (end - start !== 13) return null;
      const hi = buf.readUInt32BE(start + 4);
      if (hi > MAX_SAFE_HI) return null;
      const tag = hi * TWO_32 + buf.readUInt32BE(start + 8);
      const bits = buf[start + 12]!;
      if (id === MethodId.BasicAck) {
        h.ack.args.deliveryTag = tag;
        h.ack.args.multiple = (bits & 1) !== 0;
        return h.ack;
      }
      if (id === MethodId.BasicNack) {
        h.nack.args.deliveryTag = tag;
        h.nack.args.multiple = (bits & 1) !== 0;
        h.nack.args.requeue = (bits & 2) !== 0;
        return h.nack;
      }
      h.reject.args.deliveryTag = tag;
      h.reject.args.requeue = (bits & 1) !== 0;
      return h.reject;
    }
    default:
      return null;
  }
}
