import { describe, expect, it } from 'vitest';
import {
  counterOfSeq,
  DELAY_SEQ_COUNTER_LIMIT,
  DELAY_SEQ_EPOCH_MS,
  DELAY_SEQ_MAX_DUE_MS,
  DelaySeqAllocator,
  delaySeq,
  dueAtOfSeq,
} from '../../src/delayed/delay-seq.js';

describe('delaySeq / dueAtOfSeq', () => {
  it('round-trips due time and counter for today and far-future times', () => {
    for (const due of [DELAY_SEQ_EPOCH_MS, Date.UTC(2026, 6, 1, 12, 0, 0, 123), Date.UTC(2080, 0, 1), DELAY_SEQ_MAX_DUE_MS]) {
      for (const c of [0, 1, 4095]) {
        const seq = delaySeq(due, c);
        expect(Number.isSafeInteger(seq)).toBe(true);
        expect(dueAtOfSeq(seq)).toBe(due);
        expect(counterOfSeq(seq)).toBe(c);
      }
    }
  });

  it('stays below 2^53 at the last representable millisecond, well past 2039', () => {
    expect(DELAY_SEQ_MAX_DUE_MS).toBeGreaterThan(Date.UTC(2089, 0, 1));
    expect(delaySeq(DELAY_SEQ_MAX_DUE_MS, 4095)).toBe(Number.MAX_SAFE_INTEGER);
    // beyond the range: clamped, never unsafe
    expect(delaySeq(DELAY_SEQ_MAX_DUE_MS + 10_000, 4095)).toBe(Number.MAX_SAFE_INTEGER);
    expect(delaySeq(Number.POSITIVE_INFINITY, 0)).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
  });

  it('clamps due times before the epoch (and NaN) to the epoch', () => {
    expect(delaySeq(0, 5)).toBe(5);
    expect(delaySeq(-1e15, 0)).toBe(0);
    expect(delaySeq(Number.NaN, 0)).toBe(0);
    expect(dueAtOfSeq(delaySeq(0, 0))).toBe(DELAY_SEQ_EPOCH_MS);
  });

  it('sorts as (due time, counter)', () => {
    const t = Date.UTC(2026, 0, 1);
    const seqs = [delaySeq(t + 1, 0), delaySeq(t, 4095), delaySeq(t, 0), delaySeq(t + 1000, 7)];
    expect([...seqs].sort((a, b) => a - b)).toEqual([delaySeq(t, 0), delaySeq(t, 4095), delaySeq(t + 1, 0), delaySeq(t + 1000, 7)]);
  });

  it('rejects counters outside [0, 4096)', () => {
    expect(() => delaySeq(DELAY_SEQ_EPOCH_MS, 4096)).toThrow(RangeError);
    expect(() => delaySeq(DELAY_SEQ_EPOCH_MS, -1)).toThrow(RangeError);
    expect(() => delaySeq(DELAY_SEQ_EPOCH_MS, 1.5)).toThrow(RangeError);
  });
});

describe('DelaySeqAllocator', () => {
  it('hands out unique seqs carrying the due time, ties in allocation order', () => {
    const a = new DelaySeqAllocator();
    const t = Date.UTC(2026, 0, 1);
    const s1 = a.allocate(t);
    const s2 = a.allocate(t);
    const s3 = a.allocate(t + 5);
    expect(s1).toBeLessThan(s2);
    expect(dueAtOfSeq(s1)).toBe(t);
    expect(dueAtOfSeq(s2)).toBe(t);
    expect(dueAtOfSeq(s3)).toBe(t + 5);
    expect(a.size).toBe(3);
    a.release(s1);
    expect(a.has(s1)).toBe(false);
    expect(a.size).toBe(2);
  });

  it('never collides: a full millisecond spills into the next one', () => {
    const a = new DelaySeqAllocator();
    const t = Date.UTC(2026, 0, 1);
    const seen = new Set<number>();
    for (let i = 0; i < DELAY_SEQ_COUNTER_LIMIT + 10; i++) seen.add(a.allocate(t));
    expect(seen.size).toBe(DELAY_SEQ_COUNTER_LIMIT + 10);
    const spilled = [...seen].filter((s) => dueAtOfSeq(s) === t + 1);
    expect(spilled).toHaveLength(10);
  });

  it('skips seqs restored at recovery', () => {
    const a = new DelaySeqAllocator();
    const t = Date.UTC(2026, 0, 1);
    a.restore(delaySeq(t, 0));
    a.restore(delaySeq(t, 1));
    const s = a.allocate(t);
    expect(s).toBe(delaySeq(t, 2));
    a.clear();
    expect(a.size).toBe(0);
  });
});
