import { describe, expect, it } from 'vitest';
import { AmqpChannelError } from '../../src/protocol/errors.js';
import type { FieldTable } from '../../src/protocol/field-types.js';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import {
  ConsistentHashTable,
  consistentHashOptions,
  jumpConsistentHash,
  parseConsistentHashWeight,
} from '../../src/routing/consistent-hash-table.js';
import { array, dest, int, long, NO_ARGS, str, table, type TestDest } from './routing-helpers.js';

function routeOne(t: ConsistentHashTable<TestDest>, key: string, headers?: FieldTable): TestDest[] {
  const out = new Set<TestDest>();
  t.route(key, headers, out);
  return [...out];
}

function counts(t: ConsistentHashTable<TestDest>, n: number, keyOf: (i: number) => string = (i) => `key-${i}`): Map<string, number> {
  const result = new Map<string, number>();
  const out = new Set<TestDest>();
  for (let i = 0; i < n; i++) {
    out.clear();
    t.route(keyOf(i), undefined, out);
    if (out.size !== 1) expect.fail(`routed to ${out.size} destinations`);
    const [d] = out;
    result.set(d!.name, (result.get(d!.name) ?? 0) + 1);
  }
  return result;
}

function expectChannelError(fn: () => unknown, code: ReplyCode, text?: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AmqpChannelError);
    expect((e as AmqpChannelError).replyCode).toBe(code);
    if (text !== undefined) expect((e as AmqpChannelError).replyText).toBe(text);
    return;
  }
  expect.fail('expected an AmqpChannelError');
}

describe('consistent-hash table', () => {
  it('routes nowhere without bindings', () => {
    const t = new ConsistentHashTable<TestDest>();
    expect(routeOne(t, 'k')).toEqual([]);
  });

  it('distributes 100k keys in proportion to the weights', () => {
    const t = new ConsistentHashTable<TestDest>();
    t.bind(dest('a'), '1', NO_ARGS);
    t.bind(dest('b'), '2', NO_ARGS);
    t.bind(dest('c'), '5', NO_ARGS);
    expect(t.bucketCount).toBe(8);
    const n = 100_000;
    const c = counts(t, n);
    expect(c.get('a')! / n).toBeCloseTo(1 / 8, 1);
    expect(Math.abs(c.get('a')! / n - 1 / 8)).toBeLessThan(0.01);
    expect(Math.abs(c.get('b')! / n - 2 / 8)).toBeLessThan(0.01);
    expect(Math.abs(c.get('c')! / n - 5 / 8)).toBeLessThan(0.01);
  });

  it('distributes sequential numeric keys evenly over equal weights', () => {
    const t = new ConsistentHashTable<TestDest>();
    for (let i = 0; i < 10; i++) t.bind(dest(`q${i}`), '10', NO_ARGS);
    const n = 100_000;
    const c = counts(t, n, (i) => String(i));
    for (let i = 0; i < 10; i++) expect(Math.abs(c.get(`q${i}`)! / n - 0.1)).toBeLessThan(0.01);
  });

  it('the same key always goes to the same single destination, across tables', () => {
    const build = (): ConsistentHashTable<TestDest> => new ConsistentHashTable<TestDest>();
    const names = ['a', 'b', 'c', 'd'];
    const t1 = build();
    const t2 = build();
    for (const name of names) {
      t1.bind(dest(name), '3', NO_ARGS);
      t2.bind(dest(name), '3', NO_ARGS);
    }
    for (let i = 0; i < 1000; i++) {
      const first = routeOne(t1, `order-${i}`);
      expect(first).toHaveLength(1);
      expect(routeOne(t1, `order-${i}`)).toEqual(first);
      expect(routeOne(t2, `order-${i}`)[0]!.name).toBe(first[0]!.name);
    }
  });

  it('adding a destination only moves keys to the new destination', () => {
    const t = new ConsistentHashTable<TestDest>();
    t.bind(dest('a'), '10', NO_ARGS);
    t.bind(dest('b'), '10', NO_ARGS);
    const before = new Map<string, string>();
    for (let i = 0; i < 10_000; i++) before.set(`k${i}`, routeOne(t, `k${i}`)[0]!.name);
    t.bind(dest('c'), '10', NO_ARGS);
    let moved = 0;
    for (const [key, was] of before) {
      const now = routeOne(t, key)[0]!.name;
      if (now !== was) {
        expect(now).toBe('c');
        moved++;
      }
    }
    expect(Math.abs(moved / 10_000 - 1 / 3)).toBeLessThan(0.02);
  });

  it('unbind removes the destination\'s buckets', () => {
    const t = new ConsistentHashTable<TestDest>();
    const a = dest('a');
    const b = dest('b');
    t.bind(a, '4', NO_ARGS);
    t.bind(b, '6', NO_ARGS);
    expect(t.unbind(a, '4', NO_ARGS)).toBe(true);
    expect(t.unbind(a, '4', NO_ARGS)).toBe(false);
    expect(t.bucketCount).toBe(6);
    expect(t.bindingCount()).toBe(1);
    const c = counts(t, 2000);
    expect([...c.keys()]).toEqual(['b']);
    expect(t.unbind(b, '6', NO_ARGS)).toBe(true);
    expect(t.bucketCount).toBe(0);
    expect(t.hasBindings()).toBe(false);
    expect(routeOne(t, 'k')).toEqual([]);
  });

  it('removeDestination drops every binding of it', () => {
    const t = new ConsistentHashTable<TestDest>();
    const a = dest('a');
    const b = dest('b');
    t.bind(a, '1', NO_ARGS);
    t.bind(a, '7', NO_ARGS);
    t.bind(b, '2', NO_ARGS);
    expect(t.removeDestination(a)).toBe(2);
    expect(t.removeDestination(a)).toBe(0);
    expect(t.bucketCount).toBe(2);
    expect([...counts(t, 1000).keys()]).toEqual(['b']);
  });

  it('a destination is on the ring once, with its first binding\'s weight (RabbitMQ)', () => {
    const t = new ConsistentHashTable<TestDest>();
    const a = dest('a');
    expect(t.bind(a, '3', NO_ARGS)).toBe(true);
    expect(t.bind(a, '5', NO_ARGS)).toBe(true);
    expect(t.bind(a, '5', NO_ARGS)).toBe(false);
    expect(t.bindingCount()).toBe(2);
    expect(t.bucketCount).toBe(3);
    // removing the weight-giving binding keeps the destination with the remaining weight
    expect(t.unbind(a, '3', NO_ARGS)).toBe(true);
    expect(t.bucketCount).toBe(5);
    expect(routeOne(t, 'x')).toEqual([a]);
    expect(t.unbind(a, '5', NO_ARGS)).toBe(true);
    expect(t.bucketCount).toBe(0);
  });

  it('later buckets move down when an earlier destination goes', () => {
    const t = new ConsistentHashTable<TestDest>();
    const [a, b, c] = [dest('a'), dest('b'), dest('c')];
    t.bind(a, '2', NO_ARGS);
    t.bind(b, '2', NO_ARGS);
    t.bind(c, '2', NO_ARGS);
    t.unbind(b, '2', NO_ARGS);
    const n = 20_000;
    const got = counts(t, n);
    expect(Math.abs(got.get('a')! / n - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(got.get('c')! / n - 0.5)).toBeLessThan(0.02);
  });

  it('binding key must be an integer weight in 1..10000 (406, RabbitMQ texts)', () => {
    const t = new ConsistentHashTable<TestDest>();
    expectChannelError(() => t.bind(dest('a'), 'abc', NO_ARGS), ReplyCode.PreconditionFailed,
      'The binding key must be an integer: <<"abc">>');
    expectChannelError(() => t.bind(dest('a'), '', NO_ARGS), ReplyCode.PreconditionFailed);
    expectChannelError(() => t.bind(dest('a'), '1.5', NO_ARGS), ReplyCode.PreconditionFailed);
    expectChannelError(() => t.bind(dest('a'), ' 1', NO_ARGS), ReplyCode.PreconditionFailed);
    expectChannelError(() => t.bind(dest('a'), '0', NO_ARGS), ReplyCode.PreconditionFailed,
      'The binding key must be greater than 0');
    expectChannelError(() => t.bind(dest('a'), '-3', NO_ARGS), ReplyCode.PreconditionFailed);
    expectChannelError(() => t.bind(dest('a'), '10001', NO_ARGS), ReplyCode.PreconditionFailed,
      'The binding key must not exceed 10000');
    expect(t.hasBindings()).toBe(false);
    expect(parseConsistentHashWeight('10000')).toBe(10_000);
    expect(parseConsistentHashWeight('+7')).toBe(7);
    expect(parseConsistentHashWeight('007')).toBe(7);
  });

  it('hashes a header when hash-header is set; absent header goes to one fixed destination', () => {
    const t = new ConsistentHashTable<TestDest>(consistentHashOptions(table({ 'hash-header': str('user') })));
    for (let i = 0; i < 8; i++) t.bind(dest(`q${i}`), '1', NO_ARGS);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const h = table({ user: str(`u${i}`) });
      const d = routeOne(t, 'ignored-key', h);
      expect(d).toHaveLength(1);
      // the routing key plays no part
      expect(routeOne(t, `other-${i}`, h)).toEqual(d);
      seen.add(d[0]!.name);
    }
    expect(seen.size).toBe(8);
    const absent = routeOne(t, 'a', undefined);
    expect(absent).toHaveLength(1);
    expect(routeOne(t, 'b', table({}))).toEqual(absent);
    // integers of any width hash alike; an array hashes its first element
    expect(routeOne(t, 'x', table({ user: int(42, 'b') }))).toEqual(routeOne(t, 'y', table({ user: long(42n) })));
    expect(routeOne(t, 'x', table({ user: array(str('u1'), str('z')) }))).toEqual(routeOne(t, 'y', table({ user: str('u1') })));
    expect(routeOne(t, 'x', table({ user: array() }))).toHaveLength(1);
  });

  it('hashes a property with routeMessage when hash-property is set', () => {
    const t = new ConsistentHashTable<TestDest>(consistentHashOptions(table({ 'hash-property': str('message_id') })));
    expect(t.needsProperties).toBe(true);
    for (let i = 0; i < 8; i++) t.bind(dest(`q${i}`), '1', NO_ARGS);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const out1 = new Set<TestDest>();
      const out2 = new Set<TestDest>();
      t.routeMessage('rk1', { messageId: `m${i}` }, out1);
      t.routeMessage('rk2', { messageId: `m${i}`, correlationId: 'c' }, out2);
      expect(out1.size).toBe(1);
      expect([...out2]).toEqual([...out1]);
      seen.add([...out1][0]!.name);
    }
    expect(seen.size).toBe(8);

    const ts = new ConsistentHashTable<TestDest>(consistentHashOptions(table({ 'hash-property': str('timestamp') })));
    ts.bind(dest('a'), '1', NO_ARGS);
    ts.bind(dest('b'), '1', NO_ARGS);
    const out = new Set<TestDest>();
    ts.routeMessage('k', { timestamp: 1_700_000_000n }, out);
    expect(out.size).toBe(1);
  });

  it('routeMessage on the routing key matches route', () => {
    const t = new ConsistentHashTable<TestDest>();
    expect(t.needsProperties).toBe(false);
    for (let i = 0; i < 5; i++) t.bind(dest(`q${i}`), String(i + 1), NO_ARGS);
    for (let i = 0; i < 100; i++) {
      const out = new Set<TestDest>();
      t.routeMessage(`k${i}`, {}, out);
      expect([...out]).toEqual(routeOne(t, `k${i}`));
    }
  });
});

describe('consistentHashOptions', () => {
  it('defaults to the routing key', () => {
    expect(consistentHashOptions(NO_ARGS)).toEqual({ kind: 'routing-key' });
  });

  it('accepts hash-header or one of the three properties', () => {
    expect(consistentHashOptions(table({ 'hash-header': str('h') }))).toEqual({ kind: 'header', header: 'h' });
    for (const p of ['correlation_id', 'message_id', 'timestamp'] as const) {
      expect(consistentHashOptions(table({ 'hash-property': str(p) }))).toEqual({ kind: 'property', property: p });
    }
  });

  it('406 on both set, an unsupported property, or a non-longstr value', () => {
    expectChannelError(
      () => consistentHashOptions(table({ 'hash-header': str('h'), 'hash-property': str('message_id') })),
      ReplyCode.PreconditionFailed,
      'hash-header and hash-property are mutually exclusive',
    );
    expectChannelError(() => consistentHashOptions(table({ 'hash-property': str('reply_to') })),
      ReplyCode.PreconditionFailed, 'Unsupported property: reply_to');
    expectChannelError(() => consistentHashOptions(table({ 'hash-header': int(1) })), ReplyCode.PreconditionFailed);
  });
});

describe('jumpConsistentHash', () => {
  it('stays in range and is stable when buckets are appended', () => {
    for (let k = 0; k < 2000; k++) {
      const h = Math.imul(k, 0x9e3779b1) >>> 0;
      let prev = jumpConsistentHash(h, 1);
      expect(prev).toBe(0);
      for (let n = 2; n <= 40; n++) {
        const b = jumpConsistentHash(h, n);
        if (!(b >= 0 && b < n)) expect.fail(`bucket ${b} out of range for ${n}`);
        // a key either stays or moves to the new bucket
        if (b !== prev && b !== n - 1) expect.fail(`key ${k} moved from ${prev} to ${b} when bucket ${n - 1} was added`);
        prev = b;
      }
    }
  });
});
