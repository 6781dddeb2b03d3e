import { describe, expect, it } from 'vitest';
import { childBrokerFixture, openChannel, openConfirmChannel, TEST_TIMEOUT } from './harness.js';

// long enough that "nothing is routed before it is due" holds on a loaded machine
const EARLY_MS = 3000;
const LATE_MS = 3500;

/** Warren extension: a durable x-delayed-message exchange keeps persistent delayed messages across a kill -9. */
describe('x-delayed-message delays survive a crash', () => {
  const broker = childBrokerFixture();

  it('confirmed delayed messages are delivered after a restart, in due order, once', async () => {
    await broker.start();
    const ch = await openConfirmChannel(await broker.connect());
    await ch.assertExchange('delayed.x', 'x-delayed-message', { durable: true, arguments: { 'x-delayed-type': 'direct' } });
    await ch.assertQueue('delayed.q', { durable: true });
    await ch.bindQueue('delayed.q', 'delayed.x', 'k');
    const sentAt = Date.now();
    // published out of due order; the transient one is not kept across the crash
    ch.publish('delayed.x', 'k', Buffer.from('late'), { persistent: true, headers: { 'x-delay': LATE_MS } });
    ch.publish('delayed.x', 'k', Buffer.from('early'), { persistent: true, headers: { 'x-delay': EARLY_MS } });
    ch.publish('delayed.x', 'k', Buffer.from('transient'), { persistent: false, headers: { 'x-delay': EARLY_MS } });
    await ch.waitForConfirms();
    // nothing is routed before it is due
    expect((await ch.checkQueue('delayed.q')).messageCount).toBe(0);

    await broker.crashAndRestart();
    const ch2 = await openChannel(await broker.connect());
    const got: { body: string; at: number }[] = [];
    await new Promise<void>((resolve) => {
      void ch2.consume(
        'delayed.q',
        (m) => {
          if (m === null) return;
          got.push({ body: m.content.toString(), at: Date.now() });
          if (got.length === 2) resolve();
        },
        { noAck: true },
      );
    });
    expect(got.map((g) => g.body)).toEqual(['early', 'late']);
    // neither came before its delay had passed (the broker's clock is this machine's)
    expect(got[0]!.at - sentAt).toBeGreaterThanOrEqual(EARLY_MS);
    expect(got[1]!.at - sentAt).toBeGreaterThanOrEqual(LATE_MS);
    expect((await ch2.checkQueue('delayed.q')).messageCount).toBe(0);

    // the delay store was emptied as they went out: after another crash nothing comes back
    // (overdue delayed messages are routed during recovery, before the broker listens).
    // A no-ack delivery's removal is written in a later group commit than the delivery:
    // a durable declare's -ok waits for a batch at least that late, so the kill comes after it.
    await ch2.assertQueue('delayed.sync', { durable: true });
    await broker.crashAndRestart();
    const ch3 = await openChannel(await broker.connect());
    expect((await ch3.checkQueue('delayed.q')).messageCount).toBe(0);
  }, TEST_TIMEOUT);
});
