import { afterEach, describe, expect, it, vi } from 'vitest';
import { DelayScheduler, MAX_TIMER_DELAY_MS } from '../../src/delayed/delay-scheduler.js';

/** A manual clock and timer: one pending timer at most is what the scheduler promises. */
class FakeTimers {
  now = 1_000;
  armed: { callback: () => void; at: number; id: number } | null = null;
  armCount = 0;
  clearCount = 0;
  #nextId = 1;

  setTimer = (callback: () => void, delayMs: number): number => {
    expect(this.armed).toBeNull(); // never two timers at once
    expect(delayMs).toBeGreaterThanOrEqual(0);
    expect(delayMs).toBeLessThanOrEqual(MAX_TIMER_DELAY_MS);
    const id = this.#nextId++;
    this.armed = { callback, at: this.now + delayMs, id };
    this.armCount++;
    return id;
  };

  clearTimer = (handle: unknown): void => {
    expect(this.armed?.id).toBe(handle);
    this.armed = null;
    this.clearCount++;
  };

  /** moves the clock, firing the timer whenever it is due */
  advanceTo(t: number): void {
    while (this.armed !== null && this.armed.at <= t) {
      const { callback, at } = this.armed;
      this.now = Math.max(this.now, at);
      this.armed = null;
      callback();
    }
    this.now = t;
  }
}

function fixture() {
  const timers = new FakeTimers();
  const fired: string[] = [];
  const scheduler = new DelayScheduler<string>({
    onDue: (item) => fired.push(item),
    now: () => timers.now,
    setTimer: timers.setTimer,
    clearTimer: timers.clearTimer,
  });
  return { timers, fired, scheduler };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('DelayScheduler', () => {
  it('delivers items at their due time, in due order, ties in schedule order', () => {
    const { timers, fired, scheduler } = fixture();
    scheduler.schedule(1500, 'c');
    scheduler.schedule(1200, 'a');
    scheduler.schedule(1500, 'd');
    scheduler.schedule(1300, 'b');
    scheduler.schedule(1500, 'e');
    expect(scheduler.size).toBe(5);
    expect(scheduler.nextDueAt).toBe(1200);
    timers.advanceTo(1199);
    expect(fired).toEqual([]);
    timers.advanceTo(1200);
    expect(fired).toEqual(['a']);
    timers.advanceTo(1499);
    expect(fired).toEqual(['a', 'b']);
    timers.advanceTo(2000);
    expect(fired).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(scheduler.size).toBe(0);
    expect(timers.armed).toBeNull();
  });

  it('keeps one timer, re-armed only when an earlier item arrives', () => {
    const { timers, scheduler } = fixture();
    scheduler.schedule(5000, 'late');
    expect(timers.armCount).toBe(1);
    expect(timers.armed!.at).toBe(5000);
    scheduler.schedule(6000, 'later');
    scheduler.schedule(5000, 'tie');
    expect(timers.armCount).toBe(1);
    scheduler.schedule(2000, 'early');
    expect(timers.armCount).toBe(2);
    expect(timers.clearCount).toBe(1);
    expect(timers.armed!.at).toBe(2000);
  });

  it('items already due fire from the timer, never inside schedule()', () => {
    const { timers, fired, scheduler } = fixture();
    scheduler.schedule(500, 'past');
    scheduler.schedule(timers.now, 'now');
    expect(fired).toEqual([]);
    expect(timers.armed!.at).toBe(timers.now);
    timers.advanceTo(timers.now);
    expect(fired).toEqual(['past', 'now']);
  });

  it('orders a large random schedule correctly (heap property)', () => {
    const timers = new FakeTimers();
    const got: Array<[number, number]> = [];
    const s = new DelayScheduler<[number, number]>({
      onDue: (item) => got.push(item),
      now: () => timers.now,
      setTimer: (cb, ms) => timers.setTimer(cb, ms),
      clearTimer: (h) => timers.clearTimer(h),
    });
    let x = 12345;
    const input: Array<[number, number]> = [];
    for (let i = 0; i < 5000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const due = 2000 + (x % 3000);
      input.push([due, i]);
      s.schedule(due, [due, i]);
    }
    timers.advanceTo(10_000);
    const expected = [...input].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(got).toEqual(expected);
  });

  it('an item scheduled from onDue that is already due is delivered in the same run', () => {
    const timers = new FakeTimers();
    const fired: string[] = [];
    const s: DelayScheduler<string> = new DelayScheduler<string>({
      onDue: (item) => {
        fired.push(item);
        if (item === 'a') {
          s.schedule(timers.now - 1, 'a-child');
          s.schedule(timers.now + 100, 'a-later');
        }
      },
      now: () => timers.now,
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
    });
    s.schedule(1100, 'a');
    s.schedule(1100, 'b');
    timers.advanceTo(1100);
    expect(fired).toEqual(['a', 'a-child', 'b']);
    expect(timers.armed!.at).toBe(1200);
    timers.advanceTo(1200);
    expect(fired).toEqual(['a', 'a-child', 'b', 'a-later']);
  });

  it('clamps long delays to the largest timer and re-arms when it fires early', () => {
    const { timers, fired, scheduler } = fixture();
    const due = timers.now + MAX_TIMER_DELAY_MS + 10_000;
    scheduler.schedule(due, 'far');
    expect(timers.armed!.at).toBe(timers.now + MAX_TIMER_DELAY_MS);
    timers.advanceTo(timers.now + MAX_TIMER_DELAY_MS);
    expect(fired).toEqual([]);
    expect(timers.armed!.at).toBe(due);
    timers.advanceTo(due);
    expect(fired).toEqual(['far']);
  });

  it('clear() drops everything and the timer', () => {
    const { timers, fired, scheduler } = fixture();
    scheduler.schedule(1100, 'a');
    scheduler.schedule(1200, 'b');
    scheduler.clear();
    expect(scheduler.size).toBe(0);
    expect(scheduler.nextDueAt).toBeUndefined();
    expect(timers.armed).toBeNull();
    timers.advanceTo(5000);
    expect(fired).toEqual([]);
    scheduler.schedule(6000, 'c');
    timers.advanceTo(6000);
    expect(fired).toEqual(['c']);
  });

  it('stop() keeps items but fires nothing until start()', () => {
    const { timers, fired, scheduler } = fixture();
    scheduler.schedule(1100, 'a');
    scheduler.stop();
    expect(timers.armed).toBeNull();
    scheduler.schedule(1050, 'b');
    expect(timers.armed).toBeNull();
    timers.advanceTo(3000);
    expect(fired).toEqual([]);
    expect(scheduler.size).toBe(2);
    expect(scheduler.pending()).toEqual(['b', 'a']);
    scheduler.start();
    timers.advanceTo(3000);
    expect(fired).toEqual(['b', 'a']);
  });

  it('an onDue that throws loses no other item: the timer is re-armed', () => {
    const timers = new FakeTimers();
    const fired: string[] = [];
    const s = new DelayScheduler<string>({
      onDue: (item) => {
        if (item === 'bad') throw new Error('boom');
        fired.push(item);
      },
      now: () => timers.now,
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
    });
    s.schedule(1100, 'bad');
    s.schedule(1100, 'good');
    timers.now = 1100;
    expect(() => s.runDue()).toThrow('boom');
    expect(s.size).toBe(1);
    expect(timers.armed).not.toBeNull();
    timers.advanceTo(1100);
    expect(fired).toEqual(['good']);
  });

  it('with onError, an onDue that throws is handed over and the other due items go on', () => {
    const timers = new FakeTimers();
    const fired: string[] = [];
    const errors: [string, string][] = [];
    const s = new DelayScheduler<string>({
      onDue: (item) => {
        if (item === 'bad') throw new Error('boom');
        fired.push(item);
      },
      onError: (err, item) => errors.push([(err as Error).message, item]),
      now: () => timers.now,
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
    });
    s.schedule(1100, 'bad');
    s.schedule(1100, 'good');
    s.schedule(1200, 'later');
    timers.advanceTo(1100);
    expect(errors).toEqual([['boom', 'bad']]);
    expect(fired).toEqual(['good']);
    timers.advanceTo(1200);
    expect(fired).toEqual(['good', 'later']);
  });

  it('default timers: real setTimeout, unref\'d', async () => {
    vi.useFakeTimers({ now: 0 });
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const fired: string[] = [];
    const s = new DelayScheduler<string>({ onDue: (item) => fired.push(item) });
    s.schedule(Date.now() + 50, 'x');
    expect(spy).toHaveBeenCalledTimes(1);
    const t = spy.mock.results[0]!.value as NodeJS.Timeout;
    expect(t.hasRef()).toBe(false);
    await vi.advanceTimersByTimeAsync(49);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(['x']);
    spy.mockRestore();
  });
});
