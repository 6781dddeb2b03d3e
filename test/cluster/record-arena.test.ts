import { describe, expect, it } from 'vitest';
import { RecordArena } from '../../src/cluster/record-arena.js';

describe('RecordArena', () => {
  it('reuses released slots and never hands out bytes of a record still in use', () => {
    const arena = new RecordArena(64 * 1024);
    // live records: seq -> [buffer, fill byte]; released in seq order, with a random lag
    const live = new Map<number, [Buffer, number]>();
    let released = 0;
    let fromSlab = 0;
    const fills = Array.from({ length: 251 }, (_, v) => Buffer.alloc(20_020, v));
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let seq = 1; seq <= 5000; seq++) {
      const len = 20 + rand(20_000);
      const buf = arena.alloc(seq, len);
      expect(buf.length).toBe(len);
      if (arena.owns(buf)) fromSlab++;
      buf.fill(seq % 251);
      live.set(seq, [buf, seq % 251]);
      if (rand(3) === 0) {
        const upTo = Math.min(seq, released + 1 + rand(6));
        arena.release(upTo);
        for (let s = released + 1; s <= upTo; s++) live.delete(s);
        released = upTo;
      }
      // every live record still holds its own bytes
      for (const [b, v] of live.values()) expect(b.equals(fills[v]!.subarray(0, b.length))).toBe(true);
    }
    // most records came from the slab, and the rest from buffers of their own
    expect(fromSlab).toBeGreaterThan(1000);
    expect(fromSlab).toBeLessThan(5000);
  });

  it('gives a record too large for it a buffer of its own', () => {
    const arena = new RecordArena(1024);
    expect(arena.owns(arena.alloc(1, 1000))).toBe(false);
    expect(arena.owns(arena.alloc(2, 100))).toBe(true);
  });
});
