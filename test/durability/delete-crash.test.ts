// kill -9 in the middle of the background deletion of a big queue: recovery finishes the
// job, and nothing confirmed on other queues is lost, shared bodies included (messages
// fanned out to the deleted queue and to a kept one).
import { describe, expect, it } from 'vitest';
import { childBrokerFixture, commitBarrier, drainNumbers, openChannel, openConfirmChannel } from './harness.js';

const BIG = 60_000; // 235 windows of the background deletion: far from done when the kill comes
const SHARED = 2_000; // of which fanned out to the kept queue too

describe('kill -9 during a background queue deletion', () => {
  const broker = childBrokerFixture();

  it('recovery resumes the deletion; every message confirmed on the kept queue is there, once, in order', async () => {
    await broker.start();
    const conn = await broker.connect();
    const ch = await openConfirmChannel(conn);
    await ch.assertQueue('big', { durable: true });
    await ch.assertQueue('kept', { durable: true });
    await ch.assertExchange('both', 'fanout', { durable: true });
    await ch.bindQueue('big', 'both', '');
    await ch.bindQueue('kept', 'both', '');
    const body = (n: number): Buffer => Buffer.from(String(n));
    let kept = 0;
    // shared bodies: in both queues
    for (let i = 0; i < SHARED; i++) {
      if (!ch.publish('both', '', body(++kept), { persistent: true })) await new Promise<void>((r) => ch.once('drain', r));
    }
    for (let i = SHARED; i < BIG; i++) {
      if (!ch.sendToQueue('big', Buffer.alloc(100, 1), { persistent: true })) await new Promise<void>((r) => ch.once('drain', r));
    }
    await ch.waitForConfirms();
    expect((await ch.checkQueue('big')).messageCount).toBe(BIG);

    expect((await ch.deleteQueue('big')).messageCount).toBe(BIG);
    // the deletion runs in the background; confirmed publishes on the kept queue go on meanwhile
    for (let i = 0; i < 100; i++) ch.sendToQueue('kept', body(++kept), { persistent: true });
    await ch.waitForConfirms();
    await broker.crashAndRestart();

    const output = broker.warren.output;
    expect(output.some((l) => l.includes('resuming the deletion')), 'the kill came before the deletion finished').toBe(true);
    const conn2 = await broker.connect();
    const probe = await openChannel(conn2);
    await expect(probe.checkQueue('big')).rejects.toThrow(/404/);
    const ch2 = await openChannel(conn2);
    expect((await ch2.checkQueue('kept')).messageCount).toBe(kept);
    expect(await drainNumbers(conn2, 'kept', kept)).toEqual(Array.from({ length: kept }, (_, i) => i + 1));

    // the resumed deletion finishes (its entries are logged as removed), and stays finished
    await until(() => output.some((l) => l.includes('entries of a deleted queue removed')));
    await commitBarrier(conn2); // the drain's deletes are on disk
    await broker.crashAndRestart();
    expect(broker.warren.output.some((l) => l.includes('resuming the deletion'))).toBe(false);
    const ch3 = await openChannel(await broker.connect());
    expect((await ch3.checkQueue('kept')).messageCount).toBe(0);
  }, 120_000);
});

/** Waits for a log line of the child broker (its output is read as it comes). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}
