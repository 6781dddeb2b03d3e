import { describe, expect, it } from 'vitest';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { childBrokerFixture, commitBarrier, openChannel, openConfirmChannel } from './harness.js';

const BACKLOG = 10_000; // ten times the child broker's memory window (TEST_MEMORY_WINDOW): most of it is paged
const QUEUE = 'backlog';

/** Publishes 1..count as persistent numbered messages, honouring the socket's back-pressure. */
async function publishNumbered(ch: ConfirmChannel, count: number): Promise<void> {
  for (let n = 1; n <= count; n++) {
    const body = Buffer.from(`${String(n)}:${'x'.repeat(40)}`);
    if (!ch.sendToQueue(QUEUE, body, { persistent: true })) {
      await new Promise<void>((resolve) => ch.once('drain', resolve));
    }
  }
  await ch.waitForConfirms();
}

describe('a backlog larger than the memory window', () => {
  const broker = childBrokerFixture();
  const connectTo = (): Promise<ChannelModel> => broker.connect();
  const crashAndRestart = (): Promise<unknown> => broker.crashAndRestart();

  it('survives kill -9 and drains in order with exact counts; drained messages stay gone after another kill -9', async () => {
    await broker.start();
    const conn = await connectTo();
    const pub = await openConfirmChannel(conn);
    await pub.assertQueue(QUEUE, { durable: true });
    await publishNumbered(pub, BACKLOG);
    expect((await pub.checkQueue(QUEUE)).messageCount).toBe(BACKLOG);

    await crashAndRestart();

    const conn2 = await connectTo();
    const ch = await openChannel(conn2);
    expect((await ch.assertQueue(QUEUE, { durable: true })).messageCount).toBe(BACKLOG);
    await ch.prefetch(500);
    const numbers: number[] = [];
    let redelivered = 0;
    await new Promise<void>((resolve, reject) => {
      void ch.consume(QUEUE, (m) => {
        if (m === null) return reject(new Error('consumer cancelled'));
        numbers.push(Number(m.content.toString().split(':')[0]));
        if (m.fields.redelivered) redelivered++;
        ch.ack(m);
        if (numbers.length === BACKLOG) resolve();
      });
    });
    expect(numbers.length).toBe(BACKLOG);
    for (let i = 0; i < BACKLOG; i++) if (numbers[i] !== i + 1) expect.fail(`position ${String(i)}: got ${String(numbers[i])}`);
    expect(redelivered).toBe(0); // none was ever delivered before the crash
    expect((await ch.checkQueue(QUEUE)).messageCount).toBe(0); // same channel: every ack was handled first

    await commitBarrier(conn2); // the acks (paged entries included) are on disk
    await crashAndRestart();

    const conn3 = await connectTo();
    const ch3 = await openChannel(conn3);
    expect((await ch3.checkQueue(QUEUE)).messageCount).toBe(0);
    expect(await ch3.get(QUEUE)).toBe(false);
  }, 45_000);
});
