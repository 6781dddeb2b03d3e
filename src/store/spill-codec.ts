import { crc32c } from '@node-rs/crc32';
import { DamagedRecordError } from './keys.js';
import type { SpillEntry } from './store.js';

const TWO_POW_32 = 0x1_0000_0000;
/** seq u64, flags u8, expiresAt u64, exchange len u16, routing key len u16, properties len u32, body len u32 */
const ENTRY_HEAD = 8 + 1 + 8 + 2 + 2 + 4 + 4;

/**
 * One spill chunk: many transient messages of one queue lane, in order, as one buffer.
 *
 *   u32 crc32c of everything after it, u32 count, then per entry:
 *   <seq u64><flags u8 (bit0 redelivered)><expiresAt u64>
 *   <u16 len><exchange><u16 len><routingKey><u32 len><rawProperties><u32 len><body>
 *
 * Never on disk across a restart (the spill is wiped at open), so it carries no version.
 * The checksum is verified when a chunk is read back (DamagedRecordError on a mismatch).
 */
export function encodeSpillChunk(entries: readonly SpillEntry[]): Buffer {
  let size = 8;
  const exchanges: Buffer[] = new Array(entries.length);
  const keys: Buffer[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const m = entries[i]!.message;
    const ex = (exchanges[i] = Buffer.from(m.exchange, 'utf8'));
    const rk = (keys[i] = Buffer.from(m.routingKey, 'utf8'));
    size += ENTRY_HEAD + ex.length + rk.length + m.rawProperties.length + m.body.length;
  }
  const buf = Buffer.allocUnsafe(size);
  let o = buf.writeUInt32BE(entries.length, 4);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const m = e.message;
    o = writeU64(buf, o, e.seq);
    buf[o++] = e.redelivered ? 1 : 0;
    o = writeU64(buf, o, e.expiresAt);
    const ex = exchanges[i]!;
    o = buf.writeUInt16BE(ex.length, o);
    o += ex.copy(buf, o);
    const rk = keys[i]!;
    o = buf.writeUInt16BE(rk.length, o);
    o += rk.copy(buf, o);
    o = buf.writeUInt32BE(m.rawProperties.length, o);
    o += m.rawProperties.copy(buf, o);
    o = buf.writeUInt32BE(m.body.length, o);
    o += m.body.copy(buf, o);
  }
  buf.writeUInt32BE(crc32c(buf.subarray(4)) >>> 0, 0);
  return buf;
}

/** Decodes a chunk; bodies and properties are views of `buf` (not copied). */
export function decodeSpillChunk(buf: Buffer): SpillEntry[] {
  if (buf.length < 8) throw new DamagedRecordError(`spill chunk too short (${buf.length} bytes)`);
  const stored = buf.readUInt32BE(0);
  const actual = crc32c(buf.subarray(4)) >>> 0;
  if (stored !== actual) throw new DamagedRecordError(`spill chunk checksum mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)})`);
  const count = buf.readUInt32BE(4);
  // each entry takes ENTRY_HEAD bytes at least
  if (count > (buf.length - 8) / ENTRY_HEAD) throw new DamagedRecordError(`spill chunk counts ${count} entries in ${buf.length} bytes`);
  const out: SpillEntry[] = new Array(count);
  let o = 8;
  for (let i = 0; i < count; i++) {
    if (o + ENTRY_HEAD > buf.length) throw new DamagedRecordError('spill chunk entry runs past the chunk');
    const seq = readU64(buf, o);
    const redelivered = (buf[o + 8]! & 1) !== 0;
    const expiresAt = readU64(buf, o + 9);
    o += 17;
    const exLen = buf.readUInt16BE(o);
    const exchange = buf.toString('utf8', o + 2, o + 2 + exLen);
    o += 2 + exLen;
    const rkLen = buf.readUInt16BE(o);
    const routingKey = buf.toString('utf8', o + 2, o + 2 + rkLen);
    o += 2 + rkLen;
    const propsLen = buf.readUInt32BE(o);
    const rawProperties = buf.subarray(o + 4, o + 4 + propsLen);
    o += 4 + propsLen;
    const bodyLen = buf.readUInt32BE(o);
    const body = buf.subarray(o + 4, o + 4 + bodyLen);
    o += 4 + bodyLen;
    if (o > buf.length) throw new DamagedRecordError('spill chunk entry runs past the chunk');
    out[i] = { seq, redelivered, expiresAt, message: { exchange, routingKey, rawProperties, body } };
  }
  return out;
}

function writeU64(buf: Buffer, o: number, value: number): number {
  buf.writeUInt32BE(Math.floor(value / TWO_POW_32), o);
  buf.writeUInt32BE(value % TWO_POW_32, o + 4);
  return o + 8;
}

function readU64(buf: Buffer, o: number): number {
  return buf.readUInt32BE(o) * TWO_POW_32 + buf.readUInt32BE(o + 4);
}
