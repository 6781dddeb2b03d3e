// Message bodies carry what the consumer needs to verify every delivery without any
// shared state with the producer: who sent it, its sequence number, when it was sent,
// and a deterministic fill so a corrupted or truncated body is detected.
//
// Layout (little-endian), HEADER_SIZE bytes then the fill:
//   0  u32  producer id
//   4  u32  sequence number (per producer, from 0)
//   8  f64  send time, ms on the performance.timeOrigin + performance.now() clock
//  16  fill: PATTERN[(seq & 255) .. + size - 16]

/** Smallest body the generator can verify. */
export const HEADER_SIZE = 16;

/** Largest body size supported (the pattern is sliced, not repeated per message). */
export const MAX_BODY_SIZE = 16 * 1024 * 1024;

/** The fill source: 256 + MAX_BODY_SIZE would be wasteful, so it is built for the run's size. */
export function makePattern(size) {
  const fill = Math.max(0, size - HEADER_SIZE);
  const pattern = Buffer.allocUnsafe(fill + 256);
  // A byte sequence with period 251 (prime) so a shift by a multiple of 256 never matches itself.
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + 13) % 251;
  return pattern;
}

/** Wall-clock-based high resolution time in ms, comparable across threads of one machine. */
export function nowMs() {
  return performance.timeOrigin + performance.now();
}

/**
 * Builds one body. A fresh buffer per message: amqplib may still hold it in its
 * write queue when publish() returns.
 */
export function encodeBody(size, pattern, producerId, seq, sentAt) {
  const body = Buffer.allocUnsafe(size);
  body.writeUInt32LE(producerId, 0);
  body.writeUInt32LE(seq >>> 0, 4);
  body.writeDoubleLE(sentAt, 8);
  if (size > HEADER_SIZE) {
    const off = seq & 255;
    pattern.copy(body, HEADER_SIZE, off, off + size - HEADER_SIZE);
  }
  return body;
}

/** True when the fill after the header is exactly what encodeBody wrote for `seq`. */
export function fillIntact(body, size, pattern, seq) {
  if (body.length !== size) return false;
  if (size <= HEADER_SIZE) return true;
  const off = seq & 255;
  // Buffer#compare is a native memcmp: verifying 1 KiB bodies costs little.
  return body.compare(pattern, off, off + size - HEADER_SIZE, HEADER_SIZE, size) === 0;
}

/**
 * Writes one body in place at `buf[offset..offset+size)` (the raw client fills its
 * batch buffer directly); same layout as encodeBody.
 */
export function writeBodyInto(buf, offset, size, pattern, producerId, seq, sentAt) {
  buf.writeUInt32LE(producerId, offset);
  buf.writeUInt32LE(seq >>> 0, offset + 4);
  buf.writeDoubleLE(sentAt, offset + 8);
  if (size > HEADER_SIZE) {
    const off = seq & 255;
    pattern.copy(buf, offset + HEADER_SIZE, off, off + size - HEADER_SIZE);
  }
}
