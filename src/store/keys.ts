/**
 * Binary, order-preserving LevelDB keys and the binary values of the hot records.
 *
 * One key space, a 1-byte prefix per kind (models.md rule 9: never decimal strings,
 * whose order depends on digit count):
 *
 *   0x00 'format'                                   → u32 BE format version
 *   0x01 <vhost>                                     → empty
 *   0x02 <vhost><name>                               → JSON ExchangeRecord (arguments base64)
 *   0x03 <vhost><name>                               → JSON QueueRecord (arguments base64)
 *   0x04 <vhost><source><kind u8><destination><routingKey><argsKey u32-prefixed>
 *                                                    → JSON BindingRecord (arguments base64)
 *   0x05 … 0x09, 0x0f                               → access records (access-records.ts), format 2+
 *   0x0a, 0x0b                                       → policy records (policy-records.ts), format 3+
 *   0x10 <messageId u64 BE>                          → message value (below)
 *   0x20 <queueId u32 BE><255-priority u8><seq u64 BE> → index value (below)
 *
 * Strings in keys carry a u16 BE byte-length prefix, so ("ab","c") and ("a","bc")
 * never collide and every key of one vhost shares one prefix.
 *
 * Message value: <u32 BE crc32c of the rest><u16 len><exchange><u16 len><routingKey><u32 len><rawProperties><body…>
 *   (format 4+; the checksum is verified on every read, a mismatch quarantines the message:
 *   level-store.ts. Format-3 values, without it, are rewritten by the upgrade: migrations.ts)
 * Index value:   <messageId u64 BE><refs u16 BE><flags u8 (bit0 redelivered, bit1 transient)><bodySize u32 BE><expiresAt u64 BE>
 * bodySize lets recovery report per-queue bytes without reading bodies; UNKNOWN_BODY_SIZE
 * marks an entry written when the body size was not at hand (recovery then reads the message).
 */
import { crc32c } from '@node-rs/crc32';
import { bindingArgsKey } from '../protocol/binding-args-key.js';
import type { BindingRecord, MessageRecord } from './store.js';
import { StoreError } from './store-error.js';
import { ValueParts } from './value-parts.js';

export const Prefix = {
  Meta: 0x00,
  Vhost: 0x01,
  Exchange: 0x02,
  Queue: 0x03,
  Binding: 0x04,
  Message: 0x10,
  Index: 0x20,
} as const;

/**
 * 2: access records (users, permissions, vhost metadata and limits; see access-records.ts).
 * 3: policy records (policies and operator policies; see policy-records.ts).
 * 4: a crc32c over each message value (exchange, routing key, properties, body).
 * 5: a message value may be a pointer to a record in a body file (body-files.ts). Upgrades: migrations.ts.
 */
export const FORMAT_VERSION = 5;
export const FORMAT_KEY = Buffer.concat([Buffer.from([Prefix.Meta]), Buffer.from('format', 'latin1')]);

export const INDEX_VALUE_SIZE = 23;
export const UNKNOWN_BODY_SIZE = 0xffffffff;
const INDEX_KEY_SIZE = 14;
const MESSAGE_KEY_SIZE = 9;
const TWO_POW_32 = 0x1_0000_0000;

/** [gte, lt) bounds covering every key of one kind */
export function kindRange(prefix: number): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.from([prefix]), lt: Buffer.from([prefix + 1]) };
}

// ------------------------------------------------------------ string keys

function strBytes(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 0xffff) throw new StoreError(`name too long for a store key (${b.length} bytes)`);
  return b;
}

export function stringKey(prefix: number, parts: readonly string[], tail?: Buffer): Buffer {
  const bufs: Buffer[] = [];
  let size = 1;
  for (const p of parts) {
    const b = strBytes(p);
    bufs.push(b);
    size += 2 + b.length;
  }
  if (tail !== undefined) size += 4 + tail.length;
  const key = Buffer.allocUnsafe(size);
  key[0] = prefix;
  let o = 1;
  for (const b of bufs) {
    key.writeUInt16BE(b.length, o);
    o += 2;
    o += b.copy(key, o);
  }
  if (tail !== undefined) {
    key.writeUInt32BE(tail.length, o);
    o += 4;
    tail.copy(key, o);
  }
  return key;
}

export function vhostKey(vhost: string): Buffer {
  return stringKey(Prefix.Vhost, [vhost]);
}

export function exchangeKey(vhost: string, name: string): Buffer {
  return stringKey(Prefix.Exchange, [vhost, name]);
}

export function queueKey(vhost: string, name: string): Buffer {
  return stringKey(Prefix.Queue, [vhost, name]);
}

/**
 * A binding's identity is (vhost, source, destination kind, destination, routing key, arguments)
 * RabbitMQ: arguments compare as a key-sorted typed table, as bindingArgsKey canonicalises them.
 */
export function bindingKey(b: BindingRecord): Buffer {
  const kind = b.destinationKind === 'queue' ? 'q' : 'e';
  return stringKey(Prefix.Binding, [b.vhost, b.source, kind, b.destination, b.routingKey], Buffer.from(bindingArgsKey(b.arguments), 'utf8'));
}

// ------------------------------------------------------------ message keys and values

export function writeU64(buf: Buffer, offset: number, value: number): void {
  // two u32 halves: exact for every safe integer, no BigInt on the hot path
  buf.writeUInt32BE(Math.floor(value / TWO_POW_32), offset);
  buf.writeUInt32BE(value % TWO_POW_32, offset + 4);
}

export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * TWO_POW_32 + buf.readUInt32BE(offset + 4);
}

export function messageKey(messageId: number): Buffer {
  const key = Buffer.allocUnsafe(MESSAGE_KEY_SIZE);
  key[0] = Prefix.Message;
  writeU64(key, 1, messageId);
  return key;
}

/** messageKey(indexMessageId(value)) straight from an index value's bytes. */
export function messageKeyOfIndexValue(value: Buffer): Buffer {
  const key = Buffer.allocUnsafe(MESSAGE_KEY_SIZE);
  key[0] = Prefix.Message;
  // byte by byte: Buffer#copy of part of a buffer makes a view object per call
  for (let i = 0; i < 8; i++) key[1 + i] = value[i]!;
  return key;
}

export function messageIdOfKey(key: Buffer): number {
  return readU64(key, 1);
}

/** bytes of the checksum at the start of a message value */
export const MESSAGE_CHECKSUM_SIZE = 4;

/** A stored record that cannot be read: checksum mismatch, or lengths that do not fit. */
export class DamagedRecordError extends StoreError {
  constructor(message: string) {
    super(message);
    this.name = 'DamagedRecordError';
  }
}

/** The size encodeMessage gives, without encoding. */
export function encodedMessageLength(record: MessageRecord): number {
  return MESSAGE_CHECKSUM_SIZE + 2 + Buffer.byteLength(record.exchange, 'utf8') + 2 + Buffer.byteLength(record.routingKey, 'utf8') + 4 + record.rawProperties.length + record.body.length;
}

/** A message value encoded when its batch is written (DurableLog's DeferredValue). */
export class DeferredMessage {
  readonly length: number;
  constructor(private readonly record: MessageRecord) {
    this.length = encodedMessageLength(record);
  }

  encode(): Buffer {
    return encodeMessage(this.record);
  }

  /** The value as its head and the body itself, not copied (for a value the body files take). */
  encodeParts(): ValueParts {
    const record = this.record;
    const head = encodeMessageHead(record, 0);
    head.writeUInt32BE(crc32c(record.body, crc32c(head.subarray(MESSAGE_CHECKSUM_SIZE))) >>> 0, 0);
    return new ValueParts([head, record.body], this.length, record.unconfirmed === true);
  }
}

/**
 * The value up to its body (the checksum left for the caller: exchange, routing key,
 * properties) in a buffer with `room` octets after it.
 */
function encodeMessageHead(record: MessageRecord, room: number): Buffer {
  const exchange = Buffer.from(record.exchange, 'utf8');
  const routingKey = Buffer.from(record.routingKey, 'utf8');
  const props = record.rawProperties;
  const value = Buffer.allocUnsafe(MESSAGE_CHECKSUM_SIZE + 2 + exchange.length + 2 + routingKey.length + 4 + props.length + room);
  let o = value.writeUInt16BE(exchange.length, MESSAGE_CHECKSUM_SIZE);
  o += exchange.copy(value, o);
  o = value.writeUInt16BE(routingKey.length, o);
  o += routingKey.copy(value, o);
  o = value.writeUInt32BE(props.length, o);
  props.copy(value, o);
  return value;
}

export function encodeMessage(record: MessageRecord): Buffer {
  const body = record.body;
  const value = encodeMessageHead(record, body.length);
  body.copy(value, value.length - body.length);
  value.writeUInt32BE(crc32c(value.subarray(MESSAGE_CHECKSUM_SIZE)) >>> 0, 0);
  return value;
}

/**
 * Decodes a message value, checking its checksum and lengths first (DamagedRecordError);
 * the buffers are views into `value` (not copied).
 */
export function decodeMessage(value: Buffer): MessageRecord {
  const end = value.length;
  if (end < MESSAGE_CHECKSUM_SIZE + 8) throw new DamagedRecordError(`message value too short (${end} bytes)`);
  const stored = value.readUInt32BE(0);
  const actual = crc32c(value.subarray(MESSAGE_CHECKSUM_SIZE)) >>> 0;
  if (stored !== actual) throw new DamagedRecordError(`checksum mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)})`);
  let o = MESSAGE_CHECKSUM_SIZE;
  const exLen = value.readUInt16BE(o);
  o += 2;
  if (o + exLen + 2 > end) throw new DamagedRecordError('exchange name runs past the value');
  const exchange = value.toString('utf8', o, o + exLen);
  o += exLen;
  const rkLen = value.readUInt16BE(o);
  o += 2;
  if (o + rkLen + 4 > end) throw new DamagedRecordError('routing key runs past the value');
  const routingKey = value.toString('utf8', o, o + rkLen);
  o += rkLen;
  const propsLen = value.readUInt32BE(o);
  o += 4;
  if (o + propsLen > end) throw new DamagedRecordError('properties run past the value');
  const rawProperties = value.subarray(o, o + propsLen);
  o += propsLen;
  return { exchange, routingKey, rawProperties, body: value.subarray(o) };
}

/** Body length of an encoded message value, without decoding strings (0 when its lengths do not fit). */
export function messageBodySize(value: Buffer): number {
  if (value.length < MESSAGE_CHECKSUM_SIZE + 8) return 0;
  let o = MESSAGE_CHECKSUM_SIZE + 2 + value.readUInt16BE(MESSAGE_CHECKSUM_SIZE);
  if (o + 2 > value.length) return 0;
  o += 2 + value.readUInt16BE(o);
  if (o + 4 > value.length) return 0;
  o += 4 + value.readUInt32BE(o);
  return o > value.length ? 0 : value.length - o;
}

// ------------------------------------------------------------ index keys and values

const fcc = String.fromCharCode;

/** The bytes of a u64 (< 2^53) as 8 latin1 characters, big-endian. */
function u64Chars(n: number): string {
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n >>> 0;
  return fcc(hi >>> 24, (hi >>> 16) & 255, (hi >>> 8) & 255, hi & 255, lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255);
}

/**
 * messageKey(id) as a latin1 string, built without a Buffer: the group-commit map is keyed
 * by such strings (byte order = string order), and this is per message on the hot path.
 */
export function messageKeyString(messageId: number): string {
  return fcc(Prefix.Message) + u64Chars(messageId);
}

/** indexKey(...) as a latin1 string (see messageKeyString). */
export function indexKeyString(queueId: number, priority: number, seq: number): string {
  return (
    fcc(Prefix.Index, queueId >>> 24, (queueId >>> 16) & 255, (queueId >>> 8) & 255, queueId & 255, 255 - priority) +
    u64Chars(seq)
  );
}

export function indexKey(queueId: number, priority: number, seq: number): Buffer {
  const key = Buffer.allocUnsafe(INDEX_KEY_SIZE);
  key[0] = Prefix.Index;
  key.writeUInt32BE(queueId, 1);
  // spec: higher priority is delivered first, so the key holds 255 - priority
  key[5] = 255 - priority;
  writeU64(key, 6, seq);
  return key;
}

/** [gte, lt) bounds of one queue's index range */
export function queueIndexRange(queueId: number): { gte: Buffer; lt: Buffer } {
  const gte = Buffer.allocUnsafe(5);
  gte[0] = Prefix.Index;
  gte.writeUInt32BE(queueId, 1);
  const lt = Buffer.allocUnsafe(5);
  if (queueId === 0xffffffff) {
    lt[0] = Prefix.Index + 1;
    lt.writeUInt32BE(0, 1);
  } else {
    lt[0] = Prefix.Index;
    lt.writeUInt32BE(queueId + 1, 1);
  }
  return { gte, lt };
}

export function queueIdOfIndexKey(key: Buffer): number {
  return key.readUInt32BE(1);
}

export function priorityOfIndexKey(key: Buffer): number {
  return 255 - key[5];
}

export function seqOfIndexKey(key: Buffer): number {
  return readU64(key, 6);
}

export function encodeIndexValue(
  messageId: number,
  refs: number,
  redelivered: boolean,
  transient: boolean,
  bodySize: number,
  expiresAt: number,
): Buffer {
  const value = Buffer.allocUnsafe(INDEX_VALUE_SIZE);
  writeU64(value, 0, messageId);
  value.writeUInt16BE(refs, 8);
  value[10] = (redelivered ? 1 : 0) | (transient ? 2 : 0);
  value.writeUInt32BE(bodySize, 11);
  writeU64(value, 15, expiresAt);
  return value;
}

export function indexExpiresAt(value: Buffer): number {
  return value.length >= INDEX_VALUE_SIZE ? readU64(value, 15) : 0;
}

export function indexMessageId(value: Buffer): number {
  return readU64(value, 0);
}

export function indexRefs(value: Buffer): number {
  return value.readUInt16BE(8);
}

export function indexRedelivered(value: Buffer): boolean {
  return (value[10] & 1) !== 0;
}

export function indexTransient(value: Buffer): boolean {
  return (value[10] & 2) !== 0;
}

export function indexBodySize(value: Buffer): number {
  return value.readUInt32BE(11);
}
