import { describe, expect, it } from 'vitest';
import { AmqpConnectionError } from '../../src/protocol/errors.js';
import {
  checkFieldTable,
  decodeFieldTable,
  decodeFieldTableBody,
  encodeFieldTable,
  fieldTableFromJs,
  fieldTableSize,
  fieldTablesEqual,
  fieldTableToJs,
  fieldValueToJs,
  FieldTableCheck,
  MAX_FIELD_NESTING,
  tableGet,
} from '../../src/protocol/field-table.js';
import { seededRandom } from '../helpers/random.js';
import type { FieldTable, FieldValue } from '../../src/protocol/field-types.js';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import { amqplibDefs, sampleTable, toAmqplibTable } from './helpers.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const one = (v: FieldValue): FieldTable => new Map([['k', v]]);
/** entry bytes for key "k" */
const entry = (valueHex: string): string => '01 6b ' + valueHex;
const withLen = (body: string): Buffer => {
  const b = hex(body);
  return Buffer.concat([Buffer.from([0, 0, 0, b.length].map((x, i) => (i === 3 ? b.length & 0xff : i === 2 ? b.length >> 8 : 0))), b]);
};

// Byte vectors for every tag in RabbitMQ's set.
const VECTORS: [string, FieldValue, string][] = [
  ['t true', { type: 't', value: true }, '74 01'],
  ['t false', { type: 't', value: false }, '74 00'],
  ['b', { type: 'b', value: -2 }, '62 fe'],
  ['B', { type: 'B', value: 254 }, '42 fe'],
  ['s', { type: 's', value: -2 }, '73 fffe'],
  ['u', { type: 'u', value: 65534 }, '75 fffe'],
  ['I', { type: 'I', value: -2 }, '49 fffffffe'],
  ['i', { type: 'i', value: 4294967294 }, '69 fffffffe'],
  ['l', { type: 'l', value: -2n }, '6c fffffffffffffffe'],
  ['f', { type: 'f', value: 1.5 }, '66 3fc00000'],
  ['d', { type: 'd', value: 1.5 }, '64 3ff8000000000000'],
  ['D', { type: 'D', value: { scale: 2, value: 314 } }, '44 02 0000013a'],
  ['S', { type: 'S', value: Buffer.from('hé') }, '53 00000003 68c3a9'],
  ['x', { type: 'x', value: Buffer.from([0, 0xff]) }, '78 00000002 00ff'],
  ['A', { type: 'A', value: [{ type: 'b', value: 1 }, { type: 'V', value: null }] }, '41 00000003 6201 56'],
  ['A empty', { type: 'A', value: [] }, '41 00000000'],
  ['T', { type: 'T', value: 1700000000n }, '54 000000006553f100'],
  ['F', { type: 'F', value: new Map([['a', { type: 'B', value: 1 }]]) }, '46 00000004 0161 4201'],
  ['V', { type: 'V', value: null }, '56'],
];

describe('field table byte vectors', () => {
  for (const [name, value, valueHex] of VECTORS) {
    it(`${name}: encodes, decodes and re-encodes byte-exactly`, () => {
      const bytes = withLen(entry(valueHex));
      const table = one(value);
      expect(encodeFieldTable(table).toString('hex')).toBe(bytes.toString('hex'));
      expect(fieldTableSize(table)).toBe(bytes.length);
      const { table: decoded, offset } = decodeFieldTable(bytes, 0);
      expect(offset).toBe(bytes.length);
      expect(decoded).toEqual(table);
      expect(encodeFieldTable(decoded)).toEqual(bytes);
    });
  }

  it('empty table is four zero octets', () => {
    expect(encodeFieldTable(new Map())).toEqual(hex('00000000'));
    expect(decodeFieldTable(hex('00000000'), 0).table.size).toBe(0);
  });

  it('reads at an offset and returns the offset after the table', () => {
    const buf = Buffer.concat([hex('aabb'), encodeFieldTable(sampleTable()), hex('cc')]);
    const { table, offset } = decodeFieldTable(buf, 2);
    expect(table).toEqual(sampleTable());
    expect(buf[offset]).toBe(0xcc);
  });

  it('nested tables and arrays round-trip byte-exactly, keeping key order', () => {
    const deep: FieldTable = new Map<string, FieldValue>([
      ['z', { type: 'F', value: sampleTable() }],
      ['a', { type: 'A', value: [{ type: 'A', value: [{ type: 'F', value: sampleTable() }] }, { type: 'T', value: 0n }] }],
      ['m', { type: 'S', value: Buffer.alloc(0) }],
    ]);
    const bytes = encodeFieldTable(deep);
    const decoded = decodeFieldTable(bytes, 0).table;
    expect([...decoded.keys()]).toEqual(['z', 'a', 'm']);
    expect(decoded).toEqual(deep);
    expect(encodeFieldTable(decoded)).toEqual(bytes);
  });

  it('decodes what amqplib encodes and matches its bytes', () => {
    // amqplib's codec writes the same bytes for typed values
    const frame = amqplibDefs.encodeMethod(0x0032000a, 0, {
      ticket: 0, queue: '', passive: false, durable: false, exclusive: false, autoDelete: false, nowait: false,
      arguments: toAmqplibTable(sampleTable()),
    });
    const tableBytes = frame.subarray(11 + 2 + 1 + 1, frame.length - 1);
    expect(tableBytes).toEqual(encodeFieldTable(sampleTable()));
    expect(decodeFieldTable(tableBytes, 0).table).toEqual(sampleTable());
  });

  it("reads RabbitMQ's lenient 'L' as a signed 64-bit 'l'", () => {
    const bytes = withLen(entry('4c fffffffffffffffe'));
    expect(decodeFieldTable(bytes, 0).table.get('k')).toEqual({ type: 'l', value: -2n });
  });

  it('decodeFieldTableBody reads a table without length prefix (AMQPLAIN response)', () => {
    const body = hex('05 4c4f47494e 53 00000005 6775657374 08 50415353574f5244 53 00000005 6775657374');
    const t = decodeFieldTableBody(body);
    expect(fieldTableToJs(t)).toEqual({ LOGIN: 'guest', PASSWORD: 'guest' });
  });

  it('string values are views of the input (no copy)', () => {
    const bytes = encodeFieldTable(one({ type: 'S', value: Buffer.from('abc') }));
    const v = decodeFieldTable(bytes, 0).table.get('k')!;
    expect(v.type).toBe('S');
    expect((v.value as Buffer).buffer).toBe(bytes.buffer);
  });
});

describe('field table decode errors → 501 FRAME_ERROR', () => {
  const expectFrameError = (fn: () => unknown, text?: string): void => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AmqpConnectionError);
    expect((err as AmqpConnectionError).replyCode).toBe(ReplyCode.FrameError);
    if (text) expect((err as AmqpConnectionError).replyText).toContain(text);
  };

  it('unknown tag', () => {
    expectFrameError(() => decodeFieldTable(withLen(entry('51 00')), 0), "unknown field value type 'Q' (0x51)");
    expectFrameError(() => decodeFieldTable(withLen(entry('41 00000001 01')), 0), "unknown field value type '?' (0x01)"); // inside an array
  });

  it('every truncation of a rich table', () => {
    const bytes = encodeFieldTable(sampleTable());
    for (let len = 0; len < bytes.length; len++) expectFrameError(() => decodeFieldTable(bytes.subarray(0, len), 0));
  });

  it('a value running past its enclosing table length', () => {
    // table claims 3 bytes: key "k" + tag 'I' but the int32 lies outside
    expectFrameError(() => decodeFieldTable(hex('00000003 016b 49 00000001'), 0), 'truncated');
    expectFrameError(() => decodeFieldTable(hex('00000002 016b'), 0), 'truncated');
  });
});

describe('field table helpers', () => {
  it('tableGet', () => {
    const t = sampleTable();
    expect(tableGet(t, 'u8')).toEqual({ type: 'B', value: 200 });
    expect(tableGet(t, 'nope')).toBeUndefined();
    expect(tableGet(undefined, 'x')).toBeUndefined();
  });

  it('fieldValueToJs / fieldTableToJs', () => {
    const js = fieldTableToJs(sampleTable());
    expect(js).toEqual({
      bool: true, i8: -5, u8: 200, i16: -300, u16: 60000, i32: -70000, u32: 4000000000, i64: -(2n ** 40n),
      f32: 1.5, f64: 3.14159, dec: { scale: 2, value: 12345 }, str: 'héllo', bytes: Buffer.from([0, 1, 255]),
      arr: [1, 'two', null], ts: 1700000000n, nested: { k: 'v' }, void: null,
    });
    expect(fieldValueToJs({ type: 'S', value: Buffer.from('x') })).toBe('x');
  });

  it('fieldTableFromJs picks RabbitMQ-friendly tags', () => {
    const t = fieldTableFromJs({
      s: 'str', t: true, i: 42, neg: -2147483648, big: 2 ** 31, frac: 0.5, bi: 5n, buf: Buffer.from([1]), nil: null,
      arr: [1, 'a'], obj: { nested: false }, skipped: undefined,
    });
    expect([...t.entries()].map(([k, v]) => `${k}:${v.type}`)).toEqual([
      's:S', 't:t', 'i:I', 'neg:I', 'big:l', 'frac:d', 'bi:l', 'buf:x', 'nil:V', 'arr:A', 'obj:F',
    ]);
    expect(t.get('big')).toEqual({ type: 'l', value: 2147483648n });
    expect(t.get('obj')).toEqual({ type: 'F', value: new Map([['nested', { type: 't', value: false }]]) });
    expect(decodeFieldTable(encodeFieldTable(t), 0).table).toEqual(t);
  });

  it('fieldTablesEqual is order-insensitive and type-sensitive', () => {
    const a = fieldTableFromJs({ 'x-max-length': 10, 'x-queue-type': 'classic', nested: { a: [1, 'b'] } });
    const b = fieldTableFromJs({ nested: { a: [1, 'b'] }, 'x-queue-type': 'classic', 'x-max-length': 10 });
    expect(fieldTablesEqual(a, b)).toBe(true);
    expect(fieldTablesEqual(sampleTable(), sampleTable())).toBe(true);
    expect(fieldTablesEqual(new Map(), undefined)).toBe(true);
    expect(fieldTablesEqual(undefined, undefined)).toBe(true);
    // same number, different tag
    expect(fieldTablesEqual(one({ type: 'I', value: 10 }), one({ type: 'l', value: 10n }))).toBe(false);
    expect(fieldTablesEqual(one({ type: 'S', value: Buffer.from('a') }), one({ type: 'x', value: Buffer.from('a') }))).toBe(false);
    expect(fieldTablesEqual(one({ type: 'S', value: Buffer.from('a') }), one({ type: 'S', value: Buffer.from('b') }))).toBe(false);
    expect(fieldTablesEqual(a, fieldTableFromJs({ 'x-max-length': 10 }))).toBe(false);
    expect(fieldTablesEqual(one({ type: 'A', value: [{ type: 'I', value: 1 }] }), one({ type: 'A', value: [] }))).toBe(false);
    expect(fieldTablesEqual(one({ type: 'D', value: { scale: 1, value: 5 } }), one({ type: 'D', value: { scale: 2, value: 5 } }))).toBe(false);
  });

  it('fieldTablesEqual with ordered: the same keys in the same order (nested tables too)', () => {
    const a = fieldTableFromJs({ x: 1, y: { p: 1, q: 2 } });
    expect(fieldTablesEqual(a, fieldTableFromJs({ x: 1, y: { p: 1, q: 2 } }), true)).toBe(true);
    expect(fieldTablesEqual(a, fieldTableFromJs({ y: { p: 1, q: 2 }, x: 1 }), true)).toBe(false);
    expect(fieldTablesEqual(a, fieldTableFromJs({ x: 1, y: { q: 2, p: 1 } }), true)).toBe(false);
    expect(fieldTablesEqual(a, fieldTableFromJs({ x: 1, y: { q: 2, p: 1 } }))).toBe(true);
  });
});

/** A table nested `levels` deep (the outermost counts one): alternately tables and arrays when `mixed`. */
function nested(levels: number, mixed = false): Buffer {
  let inner = Buffer.alloc(0); // the innermost container's entries
  for (let level = levels; level > 1; level--) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(inner.length);
    // the container at `level` is a value of its parent (level - 1)
    const parentIsArray = mixed && (level - 1) % 2 === 0;
    const isArray = mixed && level % 2 === 0;
    const value = Buffer.concat([Buffer.from(isArray ? 'A' : 'F'), len, inner]);
    inner = parentIsArray ? value : Buffer.concat([Buffer.from([1, 0x6b]), value]);
  }
  return inner;
}

describe('checkFieldTable (validation without decoding)', () => {
  const check = (body: Buffer): FieldTableCheck => checkFieldTable(body, 0, body.length);

  it('accepts every tag of RabbitMQ\'s set, and the empty table', () => {
    for (const [, , valueHex] of VECTORS) expect(check(hex(entry(valueHex)))).toBe(FieldTableCheck.Ok);
    expect(check(Buffer.alloc(0))).toBe(FieldTableCheck.Ok);
    expect(check(hex(entry('4c fffffffffffffffe')))).toBe(FieldTableCheck.Ok); // 'L'
    const rich = encodeFieldTable(sampleTable());
    expect(checkFieldTable(rich, 4, rich.length)).toBe(FieldTableCheck.Ok);
  });

  it('checks only the given range of a larger buffer', () => {
    const body = hex('aa' + entry('49 00000001') + 'bb');
    expect(checkFieldTable(body, 1, body.length - 1)).toBe(FieldTableCheck.Ok);
  });

  it.each([
    ['an unknown tag', entry('55 0000')],
    ['an unknown tag inside an array', entry('41 00000001 5a')],
    ['a key with no tag after it', '016b'],
    ['a key running past the table', '05 6b'],
    ['a string longer than its table', entry('53 00000009 6162')],
    ['a string length cut short', entry('53 0000')],
    ['an int32 cut short', entry('49 000001')],
    ['a nested table longer than its parent', entry('46 00000010 016b 56')],
    ['an array whose element runs past it', entry('41 00000002 49 00')],
    ['a decimal cut short', entry('44 02 0000')],
  ])('refuses %s', (_name, body) => {
    expect(check(hex(body))).toBe(FieldTableCheck.Malformed);
  });

  it(`nesting: ${MAX_FIELD_NESTING} levels pass, one more is too deep (tables, arrays, mixed)`, () => {
    for (const mixed of [false, true]) {
      expect(check(nested(MAX_FIELD_NESTING, mixed))).toBe(FieldTableCheck.Ok);
      expect(check(nested(MAX_FIELD_NESTING + 1, mixed))).toBe(FieldTableCheck.TooDeep);
      expect(check(nested(5000, mixed))).toBe(FieldTableCheck.TooDeep);
    }
  });

  it('the decoders refuse what is too deep with 501 instead of exhausting the stack', () => {
    expect(decodeFieldTableBody(nested(MAX_FIELD_NESTING)).size).toBe(1);
    for (const body of [nested(MAX_FIELD_NESTING + 1), nested(20000, true)]) {
      let err: unknown;
      try {
        decodeFieldTableBody(body);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AmqpConnectionError);
      expect((err as AmqpConnectionError).replyText).toContain(`nested deeper than ${MAX_FIELD_NESTING} levels`);
    }
  });

  it('agrees with the decoder on 20,000 damaged and random tables', () => {
    const r = seededRandom(7);
    const base = encodeFieldTable(sampleTable()).subarray(4);
    const disagreements: string[] = [];
    for (let i = 0; i < 20000; i++) {
      let body: Buffer;
      if (i % 4 === 0) {
        body = Buffer.alloc(Math.floor(r() * 40));
        for (let j = 0; j < body.length; j++) body[j] = Math.floor(r() * 256);
      } else {
        body = Buffer.from(base);
        const damages = 1 + Math.floor(r() * 3);
        for (let d = 0; d < damages; d++) body[Math.floor(r() * body.length)] = Math.floor(r() * 256);
        if (r() < 0.3) body = body.subarray(0, Math.floor(r() * body.length));
      }
      let decodes = true;
      try {
        decodeFieldTableBody(body);
      } catch {
        decodes = false;
      }
      const ok = check(body) === FieldTableCheck.Ok;
      if (ok !== decodes) disagreements.push(body.toString('hex'));
    }
    expect(disagreements).toEqual([]);
  });
});
