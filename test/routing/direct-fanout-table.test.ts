import { describe, expect, it } from 'vitest';
import { createRoutingTable } from '../../src/routing/routing-table.js';
import { dest, int, long, NO_ARGS, routeNames, str, table, type TestDest } from './routing-helpers.js';

describe('direct table', () => {
  it('routes to every destination bound with the exact key', () => {
    const t = createRoutingTable<TestDest>('direct');
    const [q1, q2, q3] = [dest('q1'), dest('q2'), dest('q3')];
    expect(t.bind(q1, 'k', NO_ARGS)).toBe(true);
    expect(t.bind(q2, 'k', NO_ARGS)).toBe(true);
    expect(t.bind(q3, 'other', NO_ARGS)).toBe(true);
    expect(routeNames(t, 'k')).toEqual(['q1', 'q2']);
    expect(routeNames(t, 'other')).toEqual(['q3']);
    expect(routeNames(t, 'K')).toEqual([]);
    expect(routeNames(t, 'k.x')).toEqual([]);
    expect(routeNames(t, '')).toEqual([]);
  });

  it('the empty key is a key like any other', () => {
    const t = createRoutingTable<TestDest>('direct');
    t.bind(dest('q'), '', NO_ARGS);
    expect(routeNames(t, '')).toEqual(['q']);
    expect(routeNames(t, 'a')).toEqual([]);
  });

  it('bind twice is a no-op; a destination bound twice (different args) appears once', () => {
    const t = createRoutingTable<TestDest>('direct');
    const q = dest('q');
    expect(t.bind(q, 'k', NO_ARGS)).toBe(true);
    expect(t.bind(q, 'k', new Map())).toBe(false);
    expect(t.bind(q, 'k', table({ a: int(1) }))).toBe(true);
    expect(t.bindingCount()).toBe(2);
    const out = new Set<TestDest>();
    t.route('k', undefined, out);
    expect([...out]).toEqual([q]);
  });

  it('args identity is order-insensitive but type-sensitive', () => {
    const t = createRoutingTable<TestDest>('direct');
    const q = dest('q');
    expect(t.bind(q, 'k', table({ a: int(1), b: str('x') }))).toBe(true);
    expect(t.bind(q, 'k', table({ b: str('x'), a: int(1) }))).toBe(false);
    expect(t.hasBinding(q, 'k', table({ b: str('x'), a: int(1) }))).toBe(true);
    expect(t.hasBinding(q, 'k', table({ a: long(1n), b: str('x') }))).toBe(false);
    expect(t.hasBinding(q, 'k', table({ a: str('1'), b: str('x') }))).toBe(false);
    expect(t.hasBinding(q, 'k', table({ a: int(1) }))).toBe(false);
    expect(t.bind(q, 'k', table({ a: long(1n), b: str('x') }))).toBe(true);
    expect(t.bindingCount()).toBe(2);
  });

  it('unbinding one of two bindings differing only by args keeps the route', () => {
    const t = createRoutingTable<TestDest>('direct');
    const q = dest('q');
    t.bind(q, 'k', NO_ARGS);
    t.bind(q, 'k', table({ a: int(1) }));
    expect(t.unbind(q, 'k', NO_ARGS)).toBe(true);
    expect(t.unbind(q, 'k', NO_ARGS)).toBe(false);
    expect(routeNames(t, 'k')).toEqual(['q']);
    expect(t.unbind(q, 'k', table({ a: int(1) }))).toBe(true);
    expect(routeNames(t, 'k')).toEqual([]);
    expect(t.hasBindings()).toBe(false);
  });

  it('unbind of an unknown binding returns false and changes nothing', () => {
    const t = createRoutingTable<TestDest>('direct');
    const q = dest('q');
    t.bind(q, 'k', NO_ARGS);
    expect(t.unbind(dest('q'), 'k', NO_ARGS)).toBe(false); // identity, not name
    expect(t.unbind(q, 'j', NO_ARGS)).toBe(false);
    expect(t.unbind(q, 'k', table({ a: int(1) }))).toBe(false);
    expect(routeNames(t, 'k')).toEqual(['q']);
    expect(t.bindingCount()).toBe(1);
  });

  it('removeDestination drops every binding of that destination only', () => {
    const t = createRoutingTable<TestDest>('direct');
    const [q1, q2] = [dest('q1'), dest('q2')];
    t.bind(q1, 'a', NO_ARGS);
    t.bind(q1, 'b', NO_ARGS);
    t.bind(q1, 'b', table({ x: int(1) }));
    t.bind(q2, 'b', NO_ARGS);
    expect(t.removeDestination(q1)).toBe(3);
    expect(t.removeDestination(q1)).toBe(0);
    expect(t.bindingCount()).toBe(1);
    expect(routeNames(t, 'a')).toEqual([]);
    expect(routeNames(t, 'b')).toEqual(['q2']);
    expect([...t.bindings()].map((b) => [b.dest.name, b.routingKey])).toEqual([['q2', 'b']]);
  });

  it('bindings() lists each binding with a copy of its args', () => {
    const t = createRoutingTable<TestDest>('direct');
    const q = dest('q');
    const args = table({ a: int(1) });
    t.bind(q, 'k', args);
    args.set('b', int(2)); // the caller mutating its table must not change the binding
    const listed = [...t.bindings()];
    expect(listed).toHaveLength(1);
    expect(listed[0]!.dest).toBe(q);
    expect(listed[0]!.routingKey).toBe('k');
    expect([...listed[0]!.args.keys()]).toEqual(['a']);
    expect(t.hasBinding(q, 'k', table({ a: int(1) }))).toBe(true);
  });

  it('keeps routing correct after many binds and unbinds (swap-remove)', () => {
    const t = createRoutingTable<TestDest>('direct');
    const qs = Array.from({ length: 50 }, (_, i) => dest(`q${String(i).padStart(2, '0')}`));
    for (const q of qs) t.bind(q, 'k', NO_ARGS);
    for (let i = 0; i < qs.length; i += 3) t.unbind(qs[i]!, 'k', NO_ARGS);
    const expected = qs.filter((_, i) => i % 3 !== 0).map((q) => q.name);
    expect(routeNames(t, 'k')).toEqual(expected);
  });
});

describe('fanout table', () => {
  it('routes to every destination whatever the key, each once', () => {
    const t = createRoutingTable<TestDest>('fanout');
    const [q1, q2] = [dest('q1'), dest('q2')];
    t.bind(q1, '', NO_ARGS);
    t.bind(q1, 'ignored', NO_ARGS);
    t.bind(q2, 'x', table({ a: int(1) }));
    expect(t.bindingCount()).toBe(3);
    expect(routeNames(t, 'anything')).toEqual(['q1', 'q2']);
    expect(routeNames(t, '')).toEqual(['q1', 'q2']);
  });

  it('keeps a destination while any of its bindings remains', () => {
    const t = createRoutingTable<TestDest>('fanout');
    const q = dest('q');
    t.bind(q, 'a', NO_ARGS);
    t.bind(q, 'b', NO_ARGS);
    expect(t.bind(q, 'b', NO_ARGS)).toBe(false);
    t.unbind(q, 'a', NO_ARGS);
    expect(routeNames(t, 'z')).toEqual(['q']);
    t.unbind(q, 'b', NO_ARGS);
    expect(routeNames(t, 'z')).toEqual([]);
    expect(t.hasBindings()).toBe(false);
  });

  it('removeDestination', () => {
    const t = createRoutingTable<TestDest>('fanout');
    const [q1, q2] = [dest('q1'), dest('q2')];
    t.bind(q1, 'a', NO_ARGS);
    t.bind(q1, 'b', NO_ARGS);
    t.bind(q2, 'a', NO_ARGS);
    expect(t.removeDestination(q1)).toBe(2);
    expect(routeNames(t, '')).toEqual(['q2']);
    expect(t.bindingCount()).toBe(1);
  });

  it('adds to a caller-supplied set without removing what is there', () => {
    const t = createRoutingTable<TestDest>('fanout');
    const [q1, q2] = [dest('q1'), dest('q2')];
    t.bind(q1, '', NO_ARGS);
    const out = new Set<TestDest>([q2, q1]);
    t.route('', undefined, out);
    expect(out.size).toBe(2);
  });
});
