import { describe, expect, it } from 'vitest';
import { WriteBehind } from '../../src/store/write-behind.js';

const limits = { durableHigh: 1000, durableLow: 500, spillHigh: 1000, spillLow: 500 };

describe('WriteBehind (publisher flow control)', () => {
  it('saturates above the high mark and tells its waiters once it is back under the low mark', async () => {
    const wb = new WriteBehind(limits);
    wb.durableBacklog(1001);
    expect(wb.saturated).toBe(true);
    let told = 0;
    wb.waitForRelief({ flowRelieved: () => told++ });
    wb.durableBacklog(600); // between the marks: still saturated
    expect(wb.saturated).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(told).toBe(0);
    wb.durableBacklog(400);
    expect(wb.saturated).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(told).toBe(1);
  });

  it('tells a waiter on a later tick, never inside the call that relieved the store', async () => {
    // that call can be a queue's delivery pass (a no-ack delivery cancels its message's
    // write): a publisher resumed inside it published in the middle of the pass, and two
    // messages of one producer were delivered out of order
    const wb = new WriteBehind(limits);
    wb.spillBacklog(2000);
    const events: string[] = [];
    wb.waitForRelief({ flowRelieved: () => events.push('relieved') });
    events.push('relieving');
    wb.spillBacklog(0);
    events.push('returned');
    expect(events).toEqual(['relieving', 'returned']);
    await new Promise((r) => process.nextTick(r));
    expect(events).toEqual(['relieving', 'returned', 'relieved']);
  });

  it('a waiter that asks while the store is not saturated is told on a later tick too', async () => {
    const wb = new WriteBehind(limits);
    let told = false;
    wb.waitForRelief({ flowRelieved: () => (told = true) });
    expect(told).toBe(false);
    await new Promise((r) => process.nextTick(r));
    expect(told).toBe(true);
  });
});
