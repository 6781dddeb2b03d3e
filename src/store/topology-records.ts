/**
 * The values of the topology records (keys.ts kinds 0x02 exchange, 0x03 queue, 0x04
 * binding): JSON, field-table arguments as base64 of their AMQP encoding. Decoding checks
 * every field, so that a damaged record is reported as such (and set aside by a forced
 * recovery) instead of failing the whole start with a JSON or field-table error.
 */
import { decodeFieldTable, encodeFieldTable } from '../protocol/field-table.js';
import type { FieldTable } from '../protocol/field-types.js';
import { kindRange, Prefix } from './keys.js';
import type { BindingRecord, ExchangeRecord, QueueRecord } from './store.js';
import type { Level } from 'level';

/** A stored record that does not decode. */
export class RecordDamage extends Error {
  override readonly name = 'RecordDamage';
}

function encodeArgs(table: FieldTable): string {
  return encodeFieldTable(table).toString('base64');
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function encodeExchangeRecord(r: ExchangeRecord): Buffer {
  return json({ vhost: r.vhost, name: r.name, type: r.type, autoDelete: r.autoDelete, internal: r.internal, arguments: encodeArgs(r.arguments) });
}

export function encodeQueueRecord(r: QueueRecord): Buffer {
  return json({ vhost: r.vhost, name: r.name, id: r.id, autoDelete: r.autoDelete, arguments: encodeArgs(r.arguments) });
}

export function encodeBindingRecord(r: BindingRecord): Buffer {
  return json({
    vhost: r.vhost,
    source: r.source,
    destination: r.destination,
    destinationKind: r.destinationKind,
    routingKey: r.routingKey,
    arguments: encodeArgs(r.arguments),
  });
}

type Json = Record<string, unknown>;

function parse(value: Buffer): Json {
  let j: unknown;
  try {
    j = JSON.parse(value.toString('utf8'));
  } catch (e) {
    throw new RecordDamage(`not JSON (${(e as Error).message})`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new RecordDamage('not a JSON object');
  return j as Json;
}

function str(j: Json, field: string): string {
  const v = j[field];
  if (typeof v !== 'string') throw new RecordDamage(`${field} is not a string`);
  return v;
}

function bool(j: Json, field: string): boolean {
  const v = j[field];
  if (typeof v !== 'boolean') throw new RecordDamage(`${field} is not a boolean`);
  return v;
}

function args(j: Json): FieldTable {
  const b64 = str(j, 'arguments');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new RecordDamage('arguments are not base64');
  try {
    return decodeFieldTable(Buffer.from(b64, 'base64'), 0).table;
  } catch (e) {
    throw new RecordDamage(`arguments do not decode (${(e as Error).message})`);
  }
}

export function decodeExchangeRecord(value: Buffer): ExchangeRecord {
  const j = parse(value);
  return { vhost: str(j, 'vhost'), name: str(j, 'name'), type: str(j, 'type'), autoDelete: bool(j, 'autoDelete'), internal: bool(j, 'internal'), arguments: args(j) };
}

export function decodeQueueRecord(value: Buffer): QueueRecord {
  const j = parse(value);
  const id = j.id;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 0xffffffff) throw new RecordDamage('id is not a queue id');
  return { vhost: str(j, 'vhost'), name: str(j, 'name'), id, autoDelete: bool(j, 'autoDelete'), arguments: args(j) };
}

export function decodeBindingRecord(value: Buffer): BindingRecord {
  const j = parse(value);
  const kind = str(j, 'destinationKind');
  if (kind !== 'queue' && kind !== 'exchange') throw new RecordDamage('destinationKind is neither queue nor exchange');
  return {
    vhost: str(j, 'vhost'),
    source: str(j, 'source'),
    destination: str(j, 'destination'),
    destinationKind: kind,
    routingKey: str(j, 'routingKey'),
    arguments: args(j),
  };
}

export interface DamagedRecord {
  readonly kind: string;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly reason: string;
}

/** access records (users, permissions, vhost metadata and limits): JSON objects, checked as such here */
const ACCESS_KINDS: readonly number[] = [0x05, 0x06, 0x07, 0x08, 0x09];

const DECODERS: readonly { prefix: number; kind: string; decode: (v: Buffer) => unknown }[] = [
  { prefix: Prefix.Exchange, kind: 'exchange record', decode: decodeExchangeRecord },
  { prefix: Prefix.Queue, kind: 'queue record', decode: decodeQueueRecord },
  { prefix: Prefix.Binding, kind: 'binding record', decode: decodeBindingRecord },
  ...ACCESS_KINDS.map((prefix) => ({ prefix, kind: `access record (kind 0x0${prefix.toString(16)})`, decode: parse })),
];

/** Every topology and access record that does not decode (a read of those kinds, small). */
export async function findDamagedRecords(db: Level<Buffer, Buffer>): Promise<DamagedRecord[]> {
  const out: DamagedRecord[] = [];
  for (const { prefix, kind, decode } of DECODERS) {
    for (const [key, value] of await db.iterator(kindRange(prefix)).all()) {
      try {
        decode(value);
      } catch (e) {
        if (!(e instanceof RecordDamage)) throw e;
        out.push({ kind, key, value, reason: e.message });
      }
    }
  }
  return out;
}

/** A key's strings (u16-length-prefixed) for a message: vhost '/', name 'q'. */
export function describeKey(key: Buffer): string {
  const parts: string[] = [];
  let o = 1;
  while (o + 2 <= key.length && parts.length < 3) {
    const len = key.readUInt16BE(o);
    if (o + 2 + len > key.length) break;
    parts.push(JSON.stringify(key.toString('utf8', o + 2, o + 2 + len)));
    o += 2 + len;
  }
  return parts.length === 0 ? `key ${key.toString('hex')}` : parts.join(' ');
}
