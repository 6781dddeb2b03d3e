/**
 * AMQP 0-9-1 primitive readers/writers on (buf, offset), used by the generated
 * codec, the field-table codec and the frame writer.
 *
 * Readers validate bounds themselves and throw AmqpConnectionError(FrameError):
 * spec 4.2.3 / RabbitMQ: a method or header that cannot be decoded is a frame
 * error (rabbit_misc:frame_error → 501 "cannot decode …"). Callers add context
 * (which method) by catching and rethrowing.
 *
 * Writers assume the caller sized the buffer first (encoders size, allocate once,
 * then write); they return the offset after what they wrote.
 */
import { AmqpConnectionError } from './errors.js';
import { ReplyCode } from './reply-code.js';

const TWO_32 = 0x1_0000_0000;

/** Thrown by readers on truncated / malformed input. */
export function decodeError(what: string, offset: number): AmqpConnectionError {
  return new AmqpConnectionError(ReplyCode.FrameError, `${what} at offset ${offset}`);
}

function need(buf: Buffer, offset: number, n: number, what: string): void {
  if (offset + n > buf.length) throw decodeError(`truncated ${what}: need ${n} bytes, ${buf.length - offset} left`, offset);
}

export function readU8(buf: Buffer, offset: number): number {
  need(buf, offset, 1, 'octet');
  return buf[offset]!;
}

export function readU16(buf: Buffer, offset: number): number {
  need(buf, offset, 2, 'short');
  return (buf[offset]! << 8) | buf[offset + 1]!;
}

export function readU32(buf: Buffer, offset: number): number {
  need(buf, offset, 4, 'long');
  return buf.readUInt32BE(offset);
}

/**
 * longlong as a JS number (delivery tags, message counts: < 2^53 in practice).
 * Values ≥ 2^53 lose precision; they can only come from a misbehaving peer and
 * then fail the channel's own checks (unknown delivery tag → 406).
 */
export function readU64(buf: Buffer, offset: number): number {
  need(buf, offset, 8, 'longlong');
  return buf.readUInt32BE(offset) * TWO_32 + buf.readUInt32BE(offset + 4);
}

export function readU64BigInt(buf: Buffer, offset: number): bigint {
  need(buf, offset, 8, 'longlong');
  return buf.readBigUInt64BE(offset);
}

/** shortstr: u8 length + UTF-8 bytes. Advance by `1 + buf[offset]`. */
export function readShortstr(buf: Buffer, offset: number): string {
  need(buf, offset, 1, 'shortstr length');
  const len = buf[offset]!;
  need(buf, offset + 1, len, 'shortstr');
  return len === 0 ? '' : buf.toString('utf8', offset + 1, offset + 1 + len);
}

/** RabbitMQ's reply text (501 FRAME_ERROR) for a shortstr argument that is not UTF-8 (rabbit_binary_parser:assert_utf8). */
export const MALFORMED_UTF8 = 'Malformed UTF-8 in shortstr';

/**
 * Throws 501 FRAME_ERROR "Malformed UTF-8 in shortstr" (no class or method id, as RabbitMQ
 * sends it) unless the shortstr at `offset` (already read) is well-formed UTF-8.
 */
export function assertUtf8Shortstr(buf: Buffer, offset: number): void {
  const start = offset + 1;
  if (!isUtf8(buf, start, start + buf[offset]!)) throw new AmqpConnectionError(ReplyCode.FrameError, MALFORMED_UTF8);
}

/**
 * Whether buf[start, end) is well-formed UTF-8 (Unicode table 3-7: no overlong forms, no
 * surrogates, nothing above U+10FFFF), without allocating. Anything else would be decoded
 * to U+FFFD, so that different names would become the same string.
 */
export function isUtf8(buf: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let n: number; // continuation bytes
    let lo = 0x80; // range of the first continuation byte
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b === 0xe0) lo = 0xa0; // overlong
      else if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b === 0xf0) lo = 0x90; // overlong
      else if (b === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return false;
    if (i + n >= end) return false; // cut short
    const c = buf[i + 1]!;
    if (c < lo || c > hi) return false;
    for (let k = 2; k <= n; k++) {
      const d = buf[i + k]!;
      if (d < 0x80 || d > 0xbf) return false;
    }
    i += n + 1;
  }
  return true;
}

/**
 * longstr: u32 length + bytes, returned as a VIEW (subarray) of `buf`: no copy.
 * Advance by `4 + buf.readUInt32BE(offset)`.
 */
export function readLongstr(buf: Buffer, offset: number): Buffer {
  need(buf, offset, 4, 'longstr length');
  const len = buf.readUInt32BE(offset);
  need(buf, offset + 4, len, 'longstr');
  return buf.subarray(offset + 4, offset + 4 + len);
}

export function writeU64(buf: Buffer, offset: number, value: number): number {
  // BigInt-free: two u32 halves. Math.floor keeps exact values up to 2^53.
  buf.writeUInt32BE(Math.floor(value / TWO_32) >>> 0, offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
  return offset + 8;
}

/** Byte length of a shortstr's content; throws if it does not fit (spec: ≤ 255 octets). */
export function shortstrByteLength(s: string, field = 'shortstr'): number {
  const len = s.length === 0 ? 0 : Buffer.byteLength(s, 'utf8');
  if (len > 255) throw new RangeError(`${field} too long: ${len} bytes (max 255)`);
  return len;
}

/** Writes u8 length + UTF-8 bytes of `s`, whose byte length the caller already measured. */
export function writeShortstr(buf: Buffer, offset: number, s: string, byteLength: number): number {
  buf[offset] = byteLength;
  if (byteLength !== 0) buf.write(s, offset + 1, byteLength, 'utf8');
  return offset + 1 + byteLength;
}

export function writeLongstr(buf: Buffer, offset: number, value: Buffer): number {
  buf.writeUInt32BE(value.length, offset);
  value.copy(buf, offset + 4);
  return offset + 4 + value.length;
}

/**
 * Cuts `s` to at most 255 UTF-8 bytes on a character boundary.
 * RabbitMQ: reply texts are limited to 255 chars (rabbit_binary_generator
 * amqp_exception_explanation, chars_limit 255) so a long queue name in an error
 * message never makes connection.close / channel.close unencodable.
 */
export function truncateShortstr(s: string): string {
  if (s.length <= 85 || Buffer.byteLength(s, 'utf8') <= 255) return s; // 85 * 3 = 255
  const bytes = Buffer.from(s, 'utf8');
  let end = 255;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // don't split a multi-byte char
  return bytes.toString('utf8', 0, end);
}
