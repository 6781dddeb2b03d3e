/** Test helpers shared by the protocol tests: the spec JSON, sample values, amqplib oracle glue. */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FieldTable, FieldValue } from '../../src/protocol/field-types.js';

const require = createRequire(import.meta.url);

export interface SpecField { name: string; type: string; reserved?: boolean }
export interface SpecMethod { name: string; id: number; content: boolean; synchronous: boolean; fields: SpecField[] }
export interface SpecClass { name: string; id: number; methods: SpecMethod[]; properties: SpecField[] }
export interface Spec { classes: SpecClass[] }

export const spec: Spec = JSON.parse(readFileSync(new URL('../../spec/amqp-0-9-1-rabbitmq.json', import.meta.url), 'utf8'));

export interface AmqplibDefs {
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: Record<string, unknown>): Buffer;
  decode(id: number, buf: Buffer): Record<string, unknown>;
  info(id: number): { name: string; args: { name: string; type: string }[] };
}
export const amqplibDefs: AmqplibDefs = require(fileURLToPath(new URL('../../node_modules/amqplib/lib/defs.js', import.meta.url)));

const pascal = (s: string): string => s.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
export const camel = (s: string): string => { const p = pascal(s); return p[0]!.toLowerCase() + p.slice(1); };

export interface MethodCase { key: string; fullName: string; id: number; classId: number; methodId: number; method: SpecMethod }
export const allMethods: MethodCase[] = spec.classes.flatMap((c) =>
  c.methods.map((m) => ({ key: pascal(c.name) + pascal(m.name), fullName: `${c.name}.${m.name}`, id: ((c.id << 16) | m.id) >>> 0, classId: c.id, methodId: m.id, method: m })),
);

/** One value of every tag (values amqplib can also encode: D non-negative, f exact in float32). */
export function sampleTable(): FieldTable {
  return new Map<string, FieldValue>([
    ['bool', { type: 't', value: true }],
    ['i8', { type: 'b', value: -5 }],
    ['u8', { type: 'B', value: 200 }],
    ['i16', { type: 's', value: -300 }],
    ['u16', { type: 'u', value: 60000 }],
    ['i32', { type: 'I', value: -70000 }],
    ['u32', { type: 'i', value: 4000000000 }],
    ['i64', { type: 'l', value: -(2n ** 40n) }],
    ['f32', { type: 'f', value: 1.5 }],
    ['f64', { type: 'd', value: 3.14159 }],
    ['dec', { type: 'D', value: { scale: 2, value: 12345 } }],
    ['str', { type: 'S', value: Buffer.from('héllo') }],
    ['bytes', { type: 'x', value: Buffer.from([0, 1, 255]) }],
    ['arr', { type: 'A', value: [{ type: 'I', value: 1 }, { type: 'S', value: Buffer.from('two') }, { type: 'V', value: null }] }],
    ['ts', { type: 'T', value: 1700000000n }],
    ['nested', { type: 'F', value: new Map<string, FieldValue>([['k', { type: 'S', value: Buffer.from('v') }]]) }],
    ['void', { type: 'V', value: null }],
  ]);
}

/** A typed FieldValue in amqplib's encodeFieldValue input form ({'!': type, value}). */
export function toAmqplibValue(v: FieldValue): unknown {
  switch (v.type) {
    case 't': return v.value;
    case 'b': return { '!': 'int8', value: v.value };
    case 'B': return { '!': 'uint8', value: v.value };
    case 's': return { '!': 'int16', value: v.value };
    case 'u': return { '!': 'uint16', value: v.value };
    case 'I': return { '!': 'int32', value: v.value };
    case 'i': return { '!': 'uint32', value: v.value };
    case 'l': return { '!': 'int64', value: Number(v.value) };
    case 'f': return { '!': 'float', value: v.value };
    case 'd': return { '!': 'double', value: v.value };
    case 'D': return { '!': 'decimal', value: { places: v.value.scale, digits: v.value.value } };
    case 'S': return v.value.toString('utf8');
    case 'x': return v.value;
    case 'A': return v.value.map(toAmqplibValue);
    case 'T': return { '!': 'timestamp', value: Number(v.value) };
    case 'F': return toAmqplibTable(v.value);
    case 'V': return null;
  }
}
export function toAmqplibTable(t: FieldTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of t) out[k] = toAmqplibValue(v);
  return out;
}

/** Sample value for a spec field; `seed` varies values between fields and runs. */
export function sampleValue(f: SpecField, seed: number): unknown {
  switch (f.type) {
    case 'bit': return seed % 2 === 0;
    case 'octet': return (seed * 37 + 11) & 0xff;
    case 'short': return (seed * 1031 + 7) & 0xffff;
    case 'long': return ((seed * 2654435761) >>> 0) || 1;
    case 'longlong': return 2 ** 40 + seed * 1000003;
    case 'shortstr': return `${f.name}-${seed}-ünï`;
    case 'longstr': return Buffer.from(`\u0000${f.name}-${seed}\u00ff`, 'latin1');
    case 'table': return sampleTable();
    case 'timestamp': return BigInt(seed);
    default: throw new Error(f.type);
  }
}

export function sampleArgs(m: SpecMethod, seed: number): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  m.fields.forEach((f, i) => (args[camel(f.name)] = sampleValue(f, seed + i)));
  return args;
}
