/**
 * Field tables and arrays (spec 4.2.5.5, with RabbitMQ's errata tag set):
 *
 *   table   = u32 byte-length, then { shortstr key, tag octet, value }*
 *   array   = u32 byte-length, then { tag octet, value }*
 *   t bool(u8)  b int8  B uint8  s int16  u uint16  I int32  i uint32
 *   l int64  f float32  d float64  D decimal(u8 scale, int32)  S longstr
 *   x bytes(u32 len)  A array  T timestamp(u64)  F table  V void (no value)
 *
 * Values keep their wire tag (see field-types.ts) so a decoded table re-encodes
 * byte-exactly. One RabbitMQ leniency: 'L' (from the 0-9 spec text) is read as
 * a signed 64-bit 'l', exactly as rabbit_binary_parser does, and re-encoded as 'l'.
 *
 * Decoding errors (truncation, unknown tag, nesting deeper than MAX_FIELD_NESTING) throw
 * AmqpConnectionError(FrameError): RabbitMQ cannot parse the method/header either and
 * closes the connection.
 *
 * checkFieldTable validates a table's bytes without decoding or allocating: the publish
 * path runs it over every new content header, so that nothing later (TTL timers,
 * dead-lettering, recovery, delivery) can meet a table it cannot decode.
 */
import { AmqpConnectionError } from './errors.js';
import type { FieldTable, FieldValue } from './field-types.js';
import { decodeError, shortstrByteLength } from './primitives.js';
import { ReplyCode } from './reply-code.js';

/**
 * Tables and arrays nested deeper than this (a table inside a table … counts one level
 * each, the outermost table is level 1) are refused. RabbitMQ sets no limit; here the
 * decoders, encoders and comparisons recurse, and a 128 KiB frame can nest 20,000 deep.
 * Real headers nest two or three levels (x-death: array of tables of arrays).
 */
export const MAX_FIELD_NESTING = 64;

// ---------------------------------------------------------------- validation

/** Outcome of checkFieldTable. */
export const enum FieldTableCheck {
  Ok = 0,
  /** truncated, a length past its container, an unknown type tag: RabbitMQ cannot parse it either */
  Malformed = 1,
  /** well formed, but nested deeper than MAX_FIELD_NESTING */
  TooDeep = 2,
}

const TABLE = 0;
const ARRAY = 1;
// one walk at a time (synchronous): the container stack is shared, not allocated per call
const containerEnd = new Float64Array(MAX_FIELD_NESTING + 1);
const containerKind = new Uint8Array(MAX_FIELD_NESTING + 1);

/**
 * Whether the table body buf[start, end) (entries only, no length prefix) decodes: every
 * key and value within its container, only RabbitMQ's type tags, nesting within
 * MAX_FIELD_NESTING. Iterative, no allocation.
 */
export function checkFieldTable(buf: Buffer, start: number, end: number): FieldTableCheck {
  let depth = 1;
  containerEnd[1] = end;
  containerKind[1] = TABLE;
  let o = start;
  for (;;) {
    const e = containerEnd[depth]!;
    if (o === e) {
      // this container is complete; its parent continues right after it
      if (depth === 1) return FieldTableCheck.Ok;
      depth--;
      continue;
    }
    if (containerKind[depth] === TABLE) {
      o += 1 + buf[o]!; // the key (shortstr); a tag must follow within the table
      if (o >= e) return FieldTableCheck.Malformed;
    }
    let n: number;
    switch (buf[o++]) {
      case 0x74: // t
      case 0x62: // b
      case 0x42: // B
        n = 1;
        break;
      case 0x73: // s
      case 0x75: // u
        n = 2;
        break;
      case 0x49: // I
      case 0x69: // i
      case 0x66: // f
        n = 4;
        break;
      case 0x6c: // l
      case 0x4c: // L
      case 0x64: // d
      case 0x54: // T
        n = 8;
        break;
      case 0x44: // D
        n = 5;
        break;
      case 0x56: // V
        n = 0;
        break;
      case 0x53: // S
      case 0x78: // x
        if (o + 4 > e) return FieldTableCheck.Malformed;
        n = 4 + buf.readUInt32BE(o);
        break;
      case 0x41: // A
      case 0x46: {
        // F
        if (o + 4 > e) return FieldTableCheck.Malformed;
        const len = buf.readUInt32BE(o);
        o += 4;
        if (len > e - o) return FieldTableCheck.Malformed;
        if (depth === MAX_FIELD_NESTING) return FieldTableCheck.TooDeep;
        depth++;
        containerEnd[depth] = o + len;
        containerKind[depth] = buf[o - 5] === 0x46 ? TABLE : ARRAY;
        continue;
      }
      default:
        return FieldTableCheck.Malformed;
    }
    if (n > e - o) return FieldTableCheck.Malformed;
    o += n;
  }
}

// ---------------------------------------------------------------- decoding

/** Reads a length-prefixed table at `offset`; returns it and the offset after it. */
export function decodeFieldTable(buf: Buffer, offset: number): { table: FieldTable; offset: number } {
  if (offset + 4 > buf.length) throw decodeError('truncated field table length', offset);
  const len = buf.readUInt32BE(offset);
  const start = offset + 4;
  const end = start + len;
  if (end > buf.length) throw decodeError(`truncated field table: need ${len} bytes, ${buf.length - start} left`, offset);
  return { table: readTableBody(buf, start, end, 1), offset: end };
}

/** A table body without its u32 length prefix (SASL AMQPLAIN responses). */
export function decodeFieldTableBody(buf: Buffer): FieldTable {
  return readTableBody(buf, 0, buf.length, 1);
}

function tooDeep(offset: number): AmqpConnectionError {
  return decodeError(`field tables nested deeper than ${MAX_FIELD_NESTING} levels`, offset);
}

function readTableBody(buf: Buffer, start: number, end: number, depth: number): FieldTable {
  if (depth > MAX_FIELD_NESTING) throw tooDeep(start);
  const table: FieldTable = new Map();
  let o = start;
  while (o < end) {
    const keyLen = buf[o]!;
    const keyStart = o + 1;
    o = keyStart + keyLen;
    if (o >= end) throw decodeError('truncated field table entry', keyStart - 1);
    const key = buf.toString('utf8', keyStart, o);
    o = readValue(buf, o, end, table, key, null, depth);
  }
  return table;
}

function readArrayBody(buf: Buffer, start: number, end: number, depth: number): FieldValue[] {
  if (depth > MAX_FIELD_NESTING) throw tooDeep(start);
  const out: FieldValue[] = [];
  let o = start;
  while (o < end) o = readValue(buf, o, end, null, '', out, depth);
  return out;
}

// Module-level scratch for the value just read (avoids a {value, offset} object per value).
let lastValue: FieldValue = { type: 'V', value: null };

/** Reads tag+value at `o` (bounded by `end`), stores it in `table[key]` or pushes to `array`. */
function readValue(buf: Buffer, o: number, end: number, table: FieldTable | null, key: string, array: FieldValue[] | null, depth: number): number {
  const tag = buf[o]!;
  const p = o + 1;
  let next: number;
  switch (tag) {
    case 0x74: // t
      next = check(p, 1, end);
      lastValue = { type: 't', value: buf[p] !== 0 };
      break;
    case 0x62: // b
      next = check(p, 1, end);
      lastValue = { type: 'b', value: buf.readInt8(p) };
      break;
    case 0x42: // B
      next = check(p, 1, end);
      lastValue = { type: 'B', value: buf[p]! };
      break;
    case 0x73: // s
      next = check(p, 2, end);
      lastValue = { type: 's', value: buf.readInt16BE(p) };
      break;
    case 0x75: // u
      next = check(p, 2, end);
      lastValue = { type: 'u', value: buf.readUInt16BE(p) };
      break;
    case 0x49: // I
      next = check(p, 4, end);
      lastValue = { type: 'I', value: buf.readInt32BE(p) };
      break;
    case 0x69: // i
      next = check(p, 4, end);
      lastValue = { type: 'i', value: buf.readUInt32BE(p) };
      break;
    case 0x6c: // l
    case 0x4c: // L — RabbitMQ: read as signed 64-bit 'l' (rabbit_binary_parser, errata)
      next = check(p, 8, end);
      lastValue = { type: 'l', value: buf.readBigInt64BE(p) };
      break;
    case 0x66: // f
      next = check(p, 4, end);
      lastValue = { type: 'f', value: buf.readFloatBE(p) };
      break;
    case 0x64: // d
      next = check(p, 8, end);
      lastValue = { type: 'd', value: buf.readDoubleBE(p) };
      break;
    case 0x44: // D
      next = check(p, 5, end);
      lastValue = { type: 'D', value: { scale: buf[p]!, value: buf.readInt32BE(p + 1) } };
      break;
    case 0x54: // T
      next = check(p, 8, end);
      lastValue = { type: 'T', value: buf.readBigUInt64BE(p) };
      break;
    case 0x56: // V
      next = p;
      lastValue = { type: 'V', value: null };
      break;
    case 0x53: // S
    case 0x78: // x
    case 0x41: // A
    case 0x46: {
      // F
      check(p, 4, end);
      const len = buf.readUInt32BE(p);
      const s = p + 4;
      next = check(s, len, end);
      if (tag === 0x53) lastValue = { type: 'S', value: buf.subarray(s, next) };
      else if (tag === 0x78) lastValue = { type: 'x', value: buf.subarray(s, next) };
      else if (tag === 0x41) lastValue = { type: 'A', value: readArrayBody(buf, s, next, depth + 1) };
      else lastValue = { type: 'F', value: readTableBody(buf, s, next, depth + 1) };
      break;
    }
    default:
      throw new AmqpConnectionError(
        ReplyCode.FrameError,
        `unknown field value type '${printableTag(tag)}' (0x${tag.toString(16).padStart(2, '0')}) at offset ${o}`,
      );
  }
  if (table !== null) table.set(key, lastValue);
  else array!.push(lastValue);
  return next;
}

function check(p: number, n: number, end: number): number {
  if (p + n > end) throw decodeError(`truncated field value: need ${n} bytes, ${end - p} left`, p);
  return p + n;
}

function printableTag(tag: number): string {
  return tag >= 0x20 && tag < 0x7f ? String.fromCharCode(tag) : '?';
}

// ---------------------------------------------------------------- encoding

/** Encoded size of a table INCLUDING its 4-byte length prefix. */
export function fieldTableSize(t: FieldTable): number {
  let size = 4;
  for (const [key, v] of t) size += 1 + shortstrByteLength(key, 'field table key') + valueSize(v);
  return size;
}

function arraySize(a: readonly FieldValue[]): number {
  let size = 4;
  for (const v of a) size += valueSize(v);
  return size;
}

/** Size of tag + value. */
function valueSize(v: FieldValue): number {
  switch (v.type) {
    case 't':
    case 'b':
    case 'B':
      return 2;
    case 's':
    case 'u':
      return 3;
    case 'I':
    case 'i':
    case 'f':
      return 5;
    case 'l':
    case 'd':
    case 'T':
      return 9;
    case 'D':
      return 6;
    case 'S':
    case 'x':
      return 5 + v.value.length;
    case 'A':
      return 1 + arraySize(v.value);
    case 'F':
      return 1 + fieldTableSize(v.value);
    case 'V':
      return 1;
    default:
      throw new TypeError(`unknown field value type ${JSON.stringify((v as { type: unknown }).type)}`);
  }
}

/** Writes a table with its u32 length prefix at `offset`; returns the offset after it. */
export function writeFieldTable(buf: Buffer, offset: number, t: FieldTable): number {
  let o = offset + 4;
  for (const [key, v] of t) {
    const n = buf.write(key, o + 1, 'utf8');
    buf[o] = n;
    o = writeValue(buf, o + 1 + n, v);
  }
  buf.writeUInt32BE(o - offset - 4, offset);
  return o;
}

function writeArray(buf: Buffer, offset: number, a: readonly FieldValue[]): number {
  let o = offset + 4;
  for (const v of a) o = writeValue(buf, o, v);
  buf.writeUInt32BE(o - offset - 4, offset);
  return o;
}

function writeValue(buf: Buffer, o: number, v: FieldValue): number {
  buf[o] = v.type.charCodeAt(0);
  const p = o + 1;
  switch (v.type) {
    case 't':
      buf[p] = v.value ? 1 : 0;
      return p + 1;
    case 'b':
      buf.writeInt8(v.value, p);
      return p + 1;
    case 'B':
      buf.writeUInt8(v.value, p);
      return p + 1;
    case 's':
      buf.writeInt16BE(v.value, p);
      return p + 2;
    case 'u':
      buf.writeUInt16BE(v.value, p);
      return p + 2;
    case 'I':
      buf.writeInt32BE(v.value, p);
      return p + 4;
    case 'i':
      buf.writeUInt32BE(v.value, p);
      return p + 4;
    case 'f':
      buf.writeFloatBE(v.value, p);
      return p + 4;
    case 'd':
      buf.writeDoubleBE(v.value, p);
      return p + 8;
    case 'l':
      buf.writeBigInt64BE(v.value, p);
      return p + 8;
    case 'T':
      buf.writeBigUInt64BE(v.value, p);
      return p + 8;
    case 'D':
      buf[p] = v.value.scale;
      buf.writeInt32BE(v.value.value, p + 1);
      return p + 5;
    case 'S':
    case 'x':
      buf.writeUInt32BE(v.value.length, p);
      v.value.copy(buf, p + 4);
      return p + 4 + v.value.length;
    case 'A':
      return writeArray(buf, p, v.value);
    case 'F':
      return writeFieldTable(buf, p, v.value);
    case 'V':
      return p;
  }
}

/** Encodes a table with its u32 length prefix. */
export function encodeFieldTable(t: FieldTable): Buffer {
  const buf = Buffer.allocUnsafe(fieldTableSize(t));
  writeFieldTable(buf, 0, t);
  return buf;
}

// ---------------------------------------------------------------- helpers

export function tableGet(t: FieldTable | undefined, key: string): FieldValue | undefined {
  return t?.get(key);
}

export type JsFieldValue = number | bigint | string | boolean | Buffer | null | { scale: number; value: number } | JsFieldValue[] | { [key: string]: JsFieldValue };

/**
 * Plain JS view of a value: integers/floats → number, l/T → bigint,
 * S → string (UTF-8), x → Buffer, D → {scale, value}, A → array, F → object, V → null.
 */
export function fieldValueToJs(v: FieldValue): JsFieldValue {
  switch (v.type) {
    case 'S':
      return v.value.toString('utf8');
    case 'A':
      return v.value.map(fieldValueToJs);
    case 'F':
      return fieldTableToJs(v.value);
    case 'D':
      return { scale: v.value.scale, value: v.value.value };
    default:
      return v.value;
  }
}

export function fieldTableToJs(t: FieldTable): { [key: string]: JsFieldValue } {
  const out: { [key: string]: JsFieldValue } = {};
  for (const [k, v] of t) out[k] = fieldValueToJs(v);
  return out;
}

/**
 * Builds a table from plain JS (server-properties, x-death, …):
 * string → S, boolean → t, integer → I (int32) else l, other number → d,
 * bigint → l, Buffer → x, null → V, array → A, object → F. `undefined` entries are skipped.
 */
export function fieldTableFromJs(obj: Readonly<Record<string, unknown>>): FieldTable {
  const t: FieldTable = new Map();
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v !== undefined) t.set(key, fieldValueFromJs(v));
  }
  return t;
}

export function fieldValueFromJs(v: unknown): FieldValue {
  switch (typeof v) {
    case 'string':
      return { type: 'S', value: Buffer.from(v, 'utf8') };
    case 'boolean':
      return { type: 't', value: v };
    case 'number':
      if (Number.isInteger(v)) {
        return v >= -0x8000_0000 && v <= 0x7fff_ffff ? { type: 'I', value: v } : { type: 'l', value: BigInt(v) };
      }
      return { type: 'd', value: v };
    case 'bigint':
      return { type: 'l', value: v };
    case 'object':
      if (v === null) return { type: 'V', value: null };
      if (Buffer.isBuffer(v)) return { type: 'x', value: v };
      if (Array.isArray(v)) return { type: 'A', value: v.map(fieldValueFromJs) };
      if (v instanceof Map) return { type: 'F', value: v as FieldTable };
      return { type: 'F', value: fieldTableFromJs(v as Record<string, unknown>) };
    default:
      throw new TypeError(`cannot convert ${typeof v} to an AMQP field value`);
  }
}

/**
 * Strict table equality: same keys, and values with the same type tag and value, deeply.
 * Keys in any order, or with `ordered` in the same order too (Erlang's =:= on decoded
 * tables, which are lists in wire order: what RabbitMQ's headers exchange compares).
 */
export function fieldTablesEqual(a: FieldTable | undefined, b: FieldTable | undefined, ordered = false): boolean {
  const sizeA = a === undefined ? 0 : a.size;
  const sizeB = b === undefined ? 0 : b.size;
  if (sizeA !== sizeB) return false;
  if (sizeA === 0) return true;
  if (ordered) {
    const ib = b!.entries();
    for (const [key, va] of a!) {
      const [kb, vb] = ib.next().value as [string, FieldValue];
      if (kb !== key || !fieldValuesEqual(va, vb, true)) return false;
    }
    return true;
  }
  for (const [k, va] of a!) {
    const vb = b!.get(k);
    if (vb === undefined || !fieldValuesEqual(va, vb)) return false;
  }
  return true;
}

/** Strict value equality: same type tag and value, deeply (tables as fieldTablesEqual). */
export function fieldValuesEqual(a: FieldValue, b: FieldValue, orderedTables = false): boolean {
  if (a.type !== b.type) return false;
  switch (a.type) {
    case 'S':
    case 'x':
      return a.value.equals(b.value as Buffer);
    case 'D': {
      const d = b.value as { scale: number; value: number };
      return a.value.scale === d.scale && a.value.value === d.value;
    }
    case 'A': {
      const arr = b.value as readonly FieldValue[];
      if (a.value.length !== arr.length) return false;
      for (let i = 0; i < arr.length; i++) if (!fieldValuesEqual(a.value[i]!, arr[i]!, orderedTables)) return false;
      return true;
    }
    case 'F':
      return fieldTablesEqual(a.value, b.value as FieldTable, orderedTables);
    default:
      return a.value === b.value;
  }
}

/** RabbitMQ's names of the field types (rabbit_binary_parser's atoms), as its error texts print them. */
const FIELD_TYPE_NAMES: Record<FieldValue['type'], string> = {
  t: 'bool',
  b: 'byte',
  B: 'unsignedbyte',
  s: 'short',
  u: 'unsignedshort',
  I: 'signedint',
  i: 'unsignedint',
  l: 'long',
  f: 'float',
  d: 'double',
  D: 'decimal',
  S: 'longstr',
  x: 'binary',
  A: 'array',
  T: 'timestamp',
  F: 'table',
  V: 'void',
};

export function fieldTypeName(type: FieldValue['type']): string {
  return FIELD_TYPE_NAMES[type];
}
