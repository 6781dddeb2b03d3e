/**
 * Frame encoders for content and the delivery hot path. Every function sizes
 * first and allocates exactly once.
 *
 * Content header payload (spec 4.2.6): class-id u16, weight u16 (0),
 * body-size u64, then the property flags + list (kept as raw bytes end to end:
 * the broker never re-encodes a publisher's properties).
 */
import { FRAME_END, FRAME_HEADER_SIZE, FrameType, MethodId } from './generated/constants.js';
import { shortstrByteLength, truncateShortstr, writeShortstr, writeU64 } from './primitives.js';

export const HEARTBEAT_FRAME: Buffer = Buffer.from([FrameType.Heartbeat, 0, 0, 0, 0, 0, 0, FRAME_END]);

const CONTENT_HEADER_FIXED = 12; // class-id u16 + weight u16 + body-size u64
const TWO_32 = 0x1_0000_0000;

/** Copies a short buffer byte by byte (Buffer#copy costs a native call). */
function putBytes(buf: Buffer, o: number, src: Buffer): number {
  const n = src.length;
  if (n > 32) return o + src.copy(buf, o);
  for (let i = 0; i < n; i++) buf[o + i] = src[i]!;
  return o + n;
}

function writeFrameHead(buf: Buffer, o: number, type: number, channel: number, size: number): number {
  buf[o] = type;
  buf[o + 1] = channel >>> 8;
  buf[o + 2] = channel & 0xff;
  buf.writeUInt32BE(size, o + 3);
  return o + FRAME_HEADER_SIZE;
}

function writeContentHeader(buf: Buffer, o: number, channel: number, classId: number, bodySize: number, rawProperties: Buffer): number {
  o = writeFrameHead(buf, o, FrameType.Header, channel, CONTENT_HEADER_FIXED + rawProperties.length);
  buf.writeUInt16BE(classId, o);
  buf[o + 2] = 0; // weight: spec says MUST be zero
  buf[o + 3] = 0;
  o = writeU64(buf, o + 4, bodySize);
  o = putBytes(buf, o, rawProperties);
  buf[o] = FRAME_END;
  return o + 1;
}

/** A complete content header frame. */
export function encodeContentHeaderFrame(channel: number, classId: number, bodySize: number, rawProperties: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + CONTENT_HEADER_FIXED + rawProperties.length + 1);
  writeContentHeader(buf, 0, channel, classId, bodySize, rawProperties);
  return buf;
}

/**
 * Body frames for `body`, each frame's TOTAL size ≤ frameMax (payload ≤ frameMax - 8;
 * frameMax 0 = no limit). Zero-length body → no frames (spec 4.2.6.2).
 */
export function encodeBodyFrames(channel: number, body: Buffer, frameMax: number): Buffer[] {
  const frames: Buffer[] = [];
  const len = body.length;
  if (len === 0) return frames;
  const maxPayload = frameMax === 0 ? len : frameMax - 8;
  if (maxPayload <= 0) throw new RangeError(`frameMax ${frameMax} leaves no room for a body frame payload`);
  for (let start = 0; start < len; start += maxPayload) {
    const n = Math.min(maxPayload, len - start);
    const buf = Buffer.allocUnsafe(n + 8);
    writeFrameHead(buf, 0, FrameType.Body, channel, n);
    body.copy(buf, FRAME_HEADER_SIZE, start, start + n);
    buf[FRAME_HEADER_SIZE + n] = FRAME_END;
    frames.push(buf);
  }
  return frames;
}

/**
 * A shortstr's encoded bytes, remembered for the last string seen: deliveries repeat the
 * same consumer tag, exchange and routing key, so the UTF-8 encoding is done once.
 */
export class ShortstrBytes {
  private last: string | null = null;
  private bytes: Buffer = EMPTY;

  constructor(private readonly field: string) {}

  of(s: string): Buffer {
    if (s === this.last) return this.bytes;
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.length > 255) throw new RangeError(`${this.field} too long: ${bytes.length} bytes (max 255)`);
    this.last = s;
    this.bytes = bytes;
    return bytes;
  }
}

const EMPTY = Buffer.alloc(0);

/** Bytes writeDelivery() writes (an inline body of inlineLength > 0 adds its body frame). */
export function deliverySize(tag: Buffer, exchange: Buffer, routingKey: Buffer, rawProperties: Buffer, inlineLength: number): number {
  const methodSize = 4 + 1 + tag.length + 8 + 1 + 1 + exchange.length + 1 + routingKey.length;
  const head = methodSize + 8 + CONTENT_HEADER_FIXED + rawProperties.length + 8;
  return inlineLength === 0 ? head : head + 8 + inlineLength;
}

/**
 * basic.deliver method frame + content header frame (+ the body frame of a small body
 * that fits one frame) encoded at buf[o…]; returns the end offset. The shortstrs come
 * encoded (ShortstrBytes) so nothing is allocated.
 */
export function writeDelivery(
  buf: Buffer,
  o: number,
  channel: number,
  tag: Buffer,
  deliveryTag: number,
  redelivered: boolean,
  exchange: Buffer,
  routingKey: Buffer,
  rawProperties: Buffer,
  bodySize: number,
  inlineBody: Buffer | null,
): number {
  const methodSize = 4 + 1 + tag.length + 8 + 1 + 1 + exchange.length + 1 + routingKey.length;
  o = writeFrameHead(buf, o, FrameType.Method, channel, methodSize);
  buf.writeUInt32BE(MethodId.BasicDeliver, o);
  buf[o + 4] = tag.length;
  o = putBytes(buf, o + 5, tag);
  o = writeU64(buf, o, deliveryTag);
  buf[o++] = redelivered ? 1 : 0;
  buf[o++] = exchange.length;
  o = putBytes(buf, o, exchange);
  buf[o++] = routingKey.length;
  o = putBytes(buf, o, routingKey);
  buf[o++] = FRAME_END;
  o = writeContentHeader(buf, o, channel, 60, bodySize, rawProperties);
  if (inlineBody !== null && inlineBody.length !== 0) {
    o = writeFrameHead(buf, o, FrameType.Body, channel, inlineBody.length);
    o = putBytes(buf, o, inlineBody);
    buf[o++] = FRAME_END;
  }
  return o;
}

/** basic.get-ok method frame + content header frame in one buffer. */
export function encodeGetOkHead(
  channel: number,
  deliveryTag: number,
  redelivered: boolean,
  exchange: string,
  routingKey: string,
  messageCount: number,
  rawProperties: Buffer,
  bodySize: number,
): Buffer {
  const nEx = shortstrByteLength(exchange, 'basic.get-ok exchange');
  const nRk = shortstrByteLength(routingKey, 'basic.get-ok routing-key');
  const methodSize = 4 + 8 + 1 + 1 + nEx + 1 + nRk + 4;
  const buf = Buffer.allocUnsafe(methodSize + 8 + CONTENT_HEADER_FIXED + rawProperties.length + 8);
  let o = writeFrameHead(buf, 0, FrameType.Method, channel, methodSize);
  buf.writeUInt32BE(MethodId.BasicGetOk, o);
  o = writeU64(buf, o + 4, deliveryTag);
  buf[o++] = redelivered ? 1 : 0;
  o = writeShortstr(buf, o, exchange, nEx);
  o = writeShortstr(buf, o, routingKey, nRk);
  buf.writeUInt32BE(messageCount % TWO_32, o);
  o += 4;
  buf[o++] = FRAME_END;
  writeContentHeader(buf, o, channel, 60, bodySize, rawProperties);
  return buf;
}

/** basic.return method frame + content header frame in one buffer (reply text cut to 255 octets). */
export function encodeReturnHead(
  channel: number,
  replyCode: number,
  replyText: string,
  exchange: string,
  routingKey: string,
  rawProperties: Buffer,
  bodySize: number,
): Buffer {
  const text = truncateShortstr(replyText);
  const nText = shortstrByteLength(text, 'basic.return reply-text');
  const nEx = shortstrByteLength(exchange, 'basic.return exchange');
  const nRk = shortstrByteLength(routingKey, 'basic.return routing-key');
  const methodSize = 4 + 2 + 1 + nText + 1 + nEx + 1 + nRk;
  const buf = Buffer.allocUnsafe(methodSize + 8 + CONTENT_HEADER_FIXED + rawProperties.length + 8);
  let o = writeFrameHead(buf, 0, FrameType.Method, channel, methodSize);
  buf.writeUInt32BE(MethodId.BasicReturn, o);
  buf.writeUInt16BE(replyCode, o + 4);
  o = writeShortstr(buf, o + 6, text, nText);
  o = writeShortstr(buf, o, exchange, nEx);
  o = writeShortstr(buf, o, routingKey, nRk);
  buf[o++] = FRAME_END;
  writeContentHeader(buf, o, channel, 60, bodySize, rawProperties);
  return buf;
}
