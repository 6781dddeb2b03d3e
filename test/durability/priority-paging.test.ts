import { describe, expect, it } from 'vitest';
import { childBrokerFixture, commitBarrier, openChannel, openConfirmChannel, TEST_MEMORY_WINDOW, TEST_TIMEOUT } from './harness.js';

const LOW = 3 * TEST_MEMORY_WINDOW;
const HIGH = 2 * TEST_MEMORY_WINDOW;

/**
 * A priority queue whose low-priority backlog is paged out, then receives more than a
 * window of higher-priority messages with nobody consuming: the broker pages those out
 * too (memory stays bounded), and after a crash every persistent message comes back
 * once, by priority, in publish order within a priority.
 */
describe('a priority queue with a paged backlog and rising priorities', () => {
  const broker = childBrokerFixture();

  it('comes back whole after a crash, by priority and in publish order within one', async () => {
    await broker.start();
    let conn = await broker.connect();
    const pub = await openConfirmChannel(conn);
    await pub.assertQueue('prio.paged', { durable: true, arguments: { 'x-max-priority': 10 } });
    const send = async (priority: number, n: number): Promise<void> => {
      if (!pub.sendToQueue('prio.paged', Buffer.from(`${priority}:${n}`), { persistent: true, priority })) {
        await new Promise<void>((r) => pub.once('drain', r));
      }
    };
    for (let n = 0; n < LOW; n++) await send(1, n);
    for (let n = 0; n < HIGH; n++) await send(5, n);
    for (let n = 0; n < HIGH; n++) await send(9, n);
    await pub.waitForConfirms();
    await commitBarrier(conn);

    const expected: string[] = [];
    for (let n = 0; n < HIGH; n++) expected.push(`9:${n}`);
    for (let n = 0; n < HIGH; n++) expected.push(`5:${n}`);
    for (let n = 0; n < LOW; n++) expected.push(`1:${n}`);

    const drain = async (): Promise<string[]> => {
      const ch = await openChannel(conn);
      expect((await ch.checkQueue('prio.paged')).messageCount).toBe(expected.length);
      await ch.prefetch(200);
      const got: string[] = [];
      await new Promise<void>((resolve) => {
        void ch.consume('prio.paged', (m) => {
          if (m === null) return;
          got.push(m.content.toString());
          ch.ack(m);
          if (got.length === expected.length) resolve();
        });
      });
      return got;
    };

    await broker.crashAndRestart();
    conn = await broker.connect();
    expect(await drain()).toEqual(expected);
  }, TEST_TIMEOUT * 2);
});
