import { describe, expect, it } from 'vitest';
import { RouteSet } from '../../src/routing/route-set.js';

describe('RouteSet', () => {
  it('keeps insertion order and drops duplicates, small and large', () => {
    for (const n of [1, 3, 8, 9, 50]) {
      const s = new RouteSet<object>();
      const items = Array.from({ length: n }, (_, i) => ({ i }));
      for (const x of items) s.add(x);
      for (const x of [...items].reverse()) s.add(x); // all duplicates
      expect(s.size).toBe(n);
      expect([...s]).toEqual(items);
      expect(Array.from({ length: s.size }, (_, i) => s.get(i))).toEqual(items);
      for (const x of items) expect(s.has(x)).toBe(true);
      expect(s.has({ i: 0 })).toBe(false);
    }
  });

  it('is empty after clear and can be filled again (no stale members)', () => {
    const s = new RouteSet<object>();
    const a = Array.from({ length: 20 }, (_, i) => ({ i }));
    for (const x of a) s.add(x);
    s.clear();
    expect(s.size).toBe(0);
    expect(s.has(a[0]!)).toBe(false);
    expect([...s]).toEqual([]);
    s.add(a[5]!).add(a[5]!).add(a[6]!);
    expect([...s]).toEqual([a[5], a[6]]);
    expect(s.has(a[0]!)).toBe(false);
  });
});
