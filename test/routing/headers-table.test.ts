import { describe, expect, it } from 'vitest';
import { AmqpChannelError } from '../../src/protocol/errors.js';
import type { FieldTable } from '../../src/protocol/field-types.js';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import { validateHeadersBindingArgs } from '../../src/routing/headers-match.js';
import { createRoutingTable } from '../../src/routing/routing-table.js';
import {
  array,
  bool,
  bytes,
  decimal,
  dest,
  float,
  int,
  long,
  nested,
  NO_ARGS,
  routeNames,
  str,
  table,
  timestamp,
  VOID,
  type TestDest,
} from './routing-helpers.js';

/** [description, binding args, message headers (undefined = none), matches] */
const CASES: ReadonlyArray<readonly [string, FieldTable, FieldTable | undefined, boolean]> = [
  // x-match all (the default)
  ['all: no keys matches everything', table(), undefined, true],
  ['all: no keys, empty headers', table(), table(), true],
  ['all: explicit x-match only', table({ 'x-match': str('all') }), table({ a: int(1) }), true],
  ['all: every key equal', table({ a: int(1), b: str('x') }), table({ a: int(1), b: str('x'), c: int(3) }), true],
  ['all: one key missing', table({ a: int(1), b: str('x') }), table({ a: int(1) }), false],
  ['all: one value differs', table({ a: int(1), b: str('x') }), table({ a: int(1), b: str('y') }), false],
  ['all: no headers at all', table({ a: int(1) }), undefined, false],
  ['all: x- binding keys ignored', table({ a: int(1), 'x-foo': str('bar') }), table({ a: int(1) }), true],
  ['all: only x- keys → matches everything', table({ 'x-match': str('all'), 'x-foo': str('bar') }), undefined, true],
  // x-match any
  ['any: one of two matches', table({ 'x-match': str('any'), a: int(1), b: int(2) }), table({ b: int(2) }), true],
  ['any: none matches', table({ 'x-match': str('any'), a: int(1), b: int(2) }), table({ a: int(2), b: int(1) }), false],
  ['any: no non-x keys matches nothing', table({ 'x-match': str('any') }), table({ a: int(1) }), false],
  ['any: x- binding keys ignored', table({ 'x-match': str('any'), 'x-foo': str('bar') }), table({ 'x-foo': str('bar') }), false],
  ['any: no headers', table({ 'x-match': str('any'), a: int(1) }), undefined, false],
  // -with-x variants compare x- keys too (but never x-match itself)
  ['all-with-x: x- key compared', table({ 'x-match': str('all-with-x'), 'x-foo': str('bar') }), table({ 'x-foo': str('bar') }), true],
  ['all-with-x: x- key missing', table({ 'x-match': str('all-with-x'), 'x-foo': str('bar'), a: int(1) }), table({ a: int(1) }), false],
  ['all-with-x: only x-match → everything', table({ 'x-match': str('all-with-x') }), undefined, true],
  ['any-with-x: x- key compared', table({ 'x-match': str('any-with-x'), 'x-foo': str('bar'), a: int(1) }), table({ 'x-foo': str('bar') }), true],
  ['any-with-x: nothing equal', table({ 'x-match': str('any-with-x'), 'x-foo': str('bar') }), table({ 'x-foo': str('baz') }), false],
  ['any-with-x: only x-match → nothing', table({ 'x-match': str('any-with-x') }), table({ 'x-match': str('any-with-x') }), false],
  // void binding value = "header present", any value and type
  ['void: present as int', table({ a: VOID }), table({ a: int(7) }), true],
  ['void: present as void', table({ a: VOID }), table({ a: VOID }), true],
  ['void: present as table', table({ a: VOID }), table({ a: nested({ z: int(1) }) }), true],
  ['void: absent', table({ a: VOID }), table({ b: int(1) }), false],
  ['void header vs int binding', table({ a: int(1) }), table({ a: VOID }), false],
  ['any: void present', table({ 'x-match': str('any'), a: VOID, b: int(1) }), table({ a: str('') }), true],
  // integers: one class whatever the tag
  ['int I 1 = int b 1', table({ a: int(1, 'I') }), table({ a: int(1, 'b') }), true],
  ['int I 1 = long 1', table({ a: int(1, 'I') }), table({ a: long(1n) }), true],
  ['long 1 = int u 1', table({ a: long(1n) }), table({ a: int(1, 'u') }), true],
  ['int -5 s = long -5', table({ a: int(-5, 's') }), table({ a: long(-5n) }), true],
  ['int 1 ≠ int 2', table({ a: int(1) }), table({ a: int(2) }), false],
  ['int 1 ≠ string "1"', table({ a: int(1) }), table({ a: str('1') }), false],
  ['string "1" ≠ int 1', table({ a: str('1') }), table({ a: int(1) }), false],
  ['int 1 ≠ double 1.0', table({ a: int(1) }), table({ a: float(1) }), false],
  ['int 1 ≠ bool true', table({ a: int(1) }), table({ a: bool(true) }), false],
  ['big long exact', table({ a: long(9007199254740993n) }), table({ a: long(9007199254740993n) }), true],
  ['big long ≠ neighbour', table({ a: long(9007199254740993n) }), table({ a: long(9007199254740992n) }), false],
  // floats: f and d one class
  ['double 1.5 = float 1.5', table({ a: float(1.5, 'd') }), table({ a: float(1.5, 'f') }), true],
  ['double 1.5 ≠ 2.5', table({ a: float(1.5) }), table({ a: float(2.5) }), false],
  // binaries: longstr and byte array are both Erlang binaries
  ['longstr = longstr', table({ a: str('x') }), table({ a: str('x') }), true],
  ['longstr = bytearray', table({ a: str('x') }), table({ a: bytes('x') }), true],
  ['longstr is case-sensitive', table({ a: str('x') }), table({ a: str('X') }), false],
  ['bool true = true', table({ a: bool(true) }), table({ a: bool(true) }), true],
  ['bool true ≠ false', table({ a: bool(true) }), table({ a: bool(false) }), false],
  ['decimal equal', table({ a: decimal(2, 150) }), table({ a: decimal(2, 150) }), true],
  ['decimal scale differs', table({ a: decimal(1, 15) }), table({ a: decimal(2, 150) }), false],
  // timestamps: RabbitMQ scales the header (not the binding) to milliseconds
  ['header T 5 = binding int 5000', table({ a: int(5000) }), table({ a: timestamp(5n) }), true],
  ['header T 5 = binding T 5000', table({ a: timestamp(5000n) }), table({ a: timestamp(5n) }), true],
  ['header T 5 ≠ binding T 5', table({ a: timestamp(5n) }), table({ a: timestamp(5n) }), false],
  ['header int 5 = binding T 5', table({ a: timestamp(5n) }), table({ a: int(5) }), true],
  ['header T 0 = binding int 0', table({ a: int(0) }), table({ a: timestamp(0n) }), true],
  // arrays and tables: exact, tags included
  ['array equal', table({ a: array(int(1), str('x')) }), table({ a: array(int(1), str('x')) }), true],
  ['array tag differs', table({ a: array(int(1)) }), table({ a: array(long(1n)) }), false],
  ['array length differs', table({ a: array(int(1)) }), table({ a: array(int(1), int(1)) }), false],
  ['table equal', table({ a: nested({ k: int(1) }) }), table({ a: nested({ k: int(1) }) }), true],
  ['table value differs', table({ a: nested({ k: int(1) }) }), table({ a: nested({ k: int(2) }) }), false],
  ['table ≠ array', table({ a: nested({}) }), table({ a: array() }), false],
];

describe('headers table', () => {
  it.each(CASES)('%s', (_name, args, headers, expected) => {
    const t = createRoutingTable<TestDest>('headers');
    expect(t.bind(dest('q'), '', args)).toBe(true);
    expect(routeNames(t, 'ignored', headers)).toEqual(expected ? ['q'] : []);
  });

  it('ignores the routing key; each destination once', () => {
    const t = createRoutingTable<TestDest>('headers');
    const [q1, q2] = [dest('q1'), dest('q2')];
    t.bind(q1, 'k1', table({ a: int(1) }));
    t.bind(q1, 'k2', table({ 'x-match': str('any'), a: int(1), b: int(2) }));
    t.bind(q2, '', table({ b: int(2) }));
    expect(t.bindingCount()).toBe(3);
    const out = new Set<TestDest>();
    t.route('whatever', table({ a: int(1), b: int(2) }), out);
    expect([...out].map((d) => d.name).sort()).toEqual(['q1', 'q2']);
    expect(routeNames(t, '', table({ b: int(2) }))).toEqual(['q1', 'q2']);
    expect(routeNames(t, '', table({ a: int(1) }))).toEqual(['q1']);
  });

  it('unbind of one of two bindings differing only by args keeps the other', () => {
    const t = createRoutingTable<TestDest>('headers');
    const q = dest('q');
    t.bind(q, '', table({ a: int(1) }));
    t.bind(q, '', table({ b: int(2) }));
    expect(t.unbind(q, '', table({ a: int(1) }))).toBe(true);
    expect(routeNames(t, '', table({ a: int(1) }))).toEqual([]);
    expect(routeNames(t, '', table({ b: int(2) }))).toEqual(['q']);
    // args order does not matter for identity
    t.bind(q, '', table({ 'x-match': str('any'), c: int(3) }));
    expect(t.unbind(q, '', table({ c: int(3), 'x-match': str('any') }))).toBe(true);
    expect(t.bindingCount()).toBe(1);
  });

  it('removeDestination', () => {
    const t = createRoutingTable<TestDest>('headers');
    const [q1, q2, q3] = [dest('q1'), dest('q2'), dest('q3')];
    t.bind(q1, '', NO_ARGS);
    t.bind(q2, '', NO_ARGS);
    t.bind(q1, '', table({ a: int(1) }));
    t.bind(q3, '', NO_ARGS);
    expect(t.removeDestination(q1)).toBe(2);
    expect(t.bindingCount()).toBe(2);
    expect(routeNames(t, '', table({ a: int(1) }))).toEqual(['q2', 'q3']);
    expect(t.removeDestination(q3)).toBe(1);
    expect(routeNames(t, '', undefined)).toEqual(['q2']);
  });

  it('rejects an invalid x-match with 406 and binds nothing', () => {
    const t = createRoutingTable<TestDest>('headers');
    const q = dest('q');
    const bad = table({ 'x-match': str('some') });
    expect(() => t.bind(q, '', bad)).toThrow(AmqpChannelError);
    expect(t.bindingCount()).toBe(0);
    expect(routeNames(t, '', table())).toEqual([]);
    try {
      t.bind(q, '', bad);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AmqpChannelError);
      expect((e as AmqpChannelError).replyCode).toBe(ReplyCode.PreconditionFailed);
      expect((e as AmqpChannelError).replyText).toBe(
        'Invalid x-match field value <<"some">>; expected all, any, all-with-x, or any-with-x',
      );
    }
  });
});

describe('validateHeadersBindingArgs', () => {
  it('accepts the four modes and a missing x-match', () => {
    for (const mode of ['all', 'any', 'all-with-x', 'any-with-x']) {
      expect(() => validateHeadersBindingArgs(table({ 'x-match': str(mode) }))).not.toThrow();
    }
    expect(() => validateHeadersBindingArgs(table({ a: int(1) }))).not.toThrow();
    expect(() => validateHeadersBindingArgs(NO_ARGS)).not.toThrow();
  });

  it('rejects an unknown value, including case variants', () => {
    for (const mode of ['ALL', 'Any', '', 'all ']) {
      expect(() => validateHeadersBindingArgs(table({ 'x-match': str(mode) }))).toThrow(AmqpChannelError);
    }
  });

  it('rejects a non-longstr x-match, naming the RabbitMQ type', () => {
    const check = (args: FieldTable, text: string): void => {
      try {
        validateHeadersBindingArgs(args);
        expect.unreachable();
      } catch (e) {
        expect((e as AmqpChannelError).replyCode).toBe(ReplyCode.PreconditionFailed);
        expect((e as AmqpChannelError).replyText).toBe(text);
      }
    };
    check(table({ 'x-match': int(1) }), 'Invalid x-match field type signedint (value 1); expected longstr');
    check(table({ 'x-match': bytes('all') }), 'Invalid x-match field type binary (value <<"all">>); expected longstr');
    check(table({ 'x-match': bool(true) }), 'Invalid x-match field type bool (value true); expected longstr');
  });
});
