import { describe, expect, it } from 'vitest';
import { childBrokerFixture, openChannel, openConfirmChannel, TEST_TIMEOUT } from './harness.js';

const COUNT = 6000; // six times the child broker's memory window (TEST_MEMORY_WINDOW)

/**
 * With a store on disk, a non-durable queue pages a long backlog out of memory too
 * (as RabbitMQ's classic queues do). Order, counts and bodies must be unaffected, and
 * nothing of it survives a restart.
 */
describe('a non-durable queue with a backlog beyond the memory window', () => {
  const broker = childBrokerFixture();

  it('keeps order and counts through paging, with get and consume, and is gone after a restart', async () => {
    await broker.start();
    const conn = await broker.connect();
    const pub = await openConfirmChannel(conn);
    await pub.assertQueue('paged.transient', { durable: false });
    for (let n = 1; n <= COUNT; n++) {
      // both delivery modes: a non-durable queue keeps neither across a restart
      if (!pub.sendToQueue('paged.transient', Buffer.from(`${n}:${'y'.repeat(n % 50)}`), { persistent: n % 2 === 0 })) {
        await new Promise<void>((r) => pub.once('drain', r));
      }
    }
    await pub.waitForConfirms();
    const ch = await openChannel(conn);
    expect((await ch.checkQueue('paged.transient')).messageCount).toBe(COUNT);

    // the first half with basic.get (it waits for paged messages), the rest with a consumer
    const seen: number[] = [];
    for (let i = 0; i < COUNT / 2; i++) {
      const m = await ch.get('paged.transient', { noAck: true });
      if (m === false) throw new Error(`queue ran dry after ${String(seen.length)}`);
      const [n, fill] = m.content.toString().split(':');
      expect(fill).toBe('y'.repeat(Number(n) % 50));
      seen.push(Number(n));
    }
    await ch.prefetch(500);
    await new Promise<void>((resolve) => {
      void ch.consume('paged.transient', (m) => {
        if (m === null) return;
        seen.push(Number(m.content.toString().split(':')[0]));
        ch.ack(m);
        if (seen.length === COUNT) resolve();
      });
    });
    expect(seen).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));

    // refill, then crash: a non-durable queue and its paged backlog are gone
    for (let n = 1; n <= 3000; n++) pub.sendToQueue('paged.transient', Buffer.from(String(n)), { persistent: true });
    await pub.waitForConfirms();
    await broker.crashAndRestart();
    const ch2 = await openChannel(await broker.connect());
    await expect(ch2.checkQueue('paged.transient')).rejects.toThrow(/404/);
  }, TEST_TIMEOUT);
});
