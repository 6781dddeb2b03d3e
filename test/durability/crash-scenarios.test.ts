// kill -9 scenarios kept as regression tests (issue #10 probed them; they passed): a fanout
// to several durable queues, transactions, and a kill in the middle of a shutdown. After the
// restart, nothing confirmed (or committed) is missing, nothing appears twice, order holds.
import type { ChannelModel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { childBrokerFixture, connectionClosed, drainNumbers, openChannel, openConfirmChannel, TEST_TIMEOUT } from './harness.js';

// tx methods, which amqplib's promise API does not expose: (classId << 16) | methodId
const TX_SELECT = (90 << 16) | 10;
const TX_SELECT_OK = (90 << 16) | 11;
const TX_COMMIT = (90 << 16) | 20;
const TX_COMMIT_OK = (90 << 16) | 21;
function rpc(ch: object, method: number, expect: number): Promise<unknown> {
  return (ch as { rpc(method: number, fields: object, expect: number): Promise<unknown> }).rpc(method, {}, expect);
}

/** Consumes (no-ack) everything in `queue`; returns the bodies as numbers, in order. */
async function drain(conn: ChannelModel, queue: string): Promise<number[]> {
  const ch = await openChannel(conn);
  const count = (await ch.checkQueue(queue)).messageCount;
  await ch.close();
  return drainNumbers(conn, queue, count);
}

function strictlyIncreasing(numbers: number[]): string[] {
  const bad: string[] = [];
  for (let i = 1; i < numbers.length; i++) if (numbers[i]! <= numbers[i - 1]!) bad.push(`${numbers[i]} after ${numbers[i - 1]}`);
  return bad;
}

/**
 * Publishes numbered persistent messages on a confirm channel, `window` in flight, until
 * `stop()` says so; resolves with the confirmed numbers and the highest one published.
 */
async function publishUntil(
  conn: ChannelModel,
  exchange: string,
  routingKey: string,
  stop: (confirmed: number) => boolean,
  onStop: () => void,
): Promise<{ confirmed: Set<number>; published: number; nacked: number[] }> {
  const ch = await openConfirmChannel(conn);
  const confirmed = new Set<number>();
  const nacked: number[] = [];
  let published = 0;
  let outstanding = 0;
  let stopped = false;
  let wake: (() => void) | null = null;
  const window = 200;
  while (!stopped) {
    if (outstanding >= window) {
      await new Promise<void>((r) => (wake = r));
      wake = null;
      continue;
    }
    const n = ++published;
    outstanding++;
    try {
      ch.publish(exchange, routingKey, Buffer.from(String(n)), { persistent: true }, (err: unknown) => {
        outstanding--;
        if (stopped) return;
        if (err === null || err === undefined) confirmed.add(n);
        else nacked.push(n);
        if (stop(confirmed.size)) {
          stopped = true;
          onStop();
        }
        wake?.();
      });
    } catch {
      break; // the channel saw the broker go first
    }
  }
  return { confirmed, published, nacked };
}

describe('kill -9 regression scenarios', () => {
  const broker = childBrokerFixture();

  it(
    'fanout to three durable queues: every confirmed message in every queue, once, in order',
    async () => {
      const warren = await broker.start();
      const conn = await broker.connect();
      const setup = await openChannel(conn);
      await setup.assertExchange('crash.fanout', 'fanout', { durable: true });
      const queues = ['crash.f1', 'crash.f2', 'crash.f3'];
      for (const q of queues) {
        await setup.assertQueue(q, { durable: true });
        await setup.bindQueue(q, 'crash.fanout', '');
      }
      const outcome = await publishUntil(conn, 'crash.fanout', '', (n) => n >= 3000, () => warren.process.kill('SIGKILL'));
      await broker.crashAndRestart();
      expect(outcome.nacked).toEqual([]);
      const after = await broker.connect();
      for (const q of queues) {
        const numbers = await drain(after, q);
        expect(strictlyIncreasing(numbers), q).toEqual([]);
        expect([...outcome.confirmed].filter((n) => !numbers.includes(n)), `${q}: confirmed but lost`).toEqual([]);
        expect(numbers.filter((n) => n > outcome.published), `${q}: never published`).toEqual([]);
      }
    },
    TEST_TIMEOUT * 2,
  );

  it(
    'transactions: every committed transaction whole, the one not yet committed absent',
    async () => {
      const warren = await broker.start();
      const conn = await broker.connect();
      const ch = await openChannel(conn);
      await ch.assertQueue('crash.tx', { durable: true });
      await rpc(ch, TX_SELECT, TX_SELECT_OK);
      const PER_TX = 25;
      const COMMITTED = 40;
      let n = 0;
      for (let t = 0; t < COMMITTED; t++) {
        for (let i = 0; i < PER_TX; i++) ch.sendToQueue('crash.tx', Buffer.from(String(++n)), { persistent: true });
        await rpc(ch, TX_COMMIT, TX_COMMIT_OK);
      }
      const committed = n;
      // one more transaction, published but never committed
      for (let i = 0; i < PER_TX; i++) ch.sendToQueue('crash.tx', Buffer.from(String(++n)), { persistent: true });
      // a round trip on another channel: the broker has read those publishes
      await (await openChannel(conn)).checkQueue('crash.tx');
      await broker.crashAndRestart();
      expect(warren.process.signalCode).toBe('SIGKILL');
      const numbers = await drain(await broker.connect(), 'crash.tx');
      expect(numbers).toEqual(Array.from({ length: committed }, (_, i) => i + 1));
    },
    TEST_TIMEOUT * 2,
  );

  it(
    'killed during a shutdown (SIGTERM, then SIGKILL once clients are told): every confirmed message survives',
    async () => {
      const warren = await broker.start();
      const conn = await broker.connect();
      await (await openChannel(conn)).assertQueue('crash.shutdown', { durable: true });
      let signalled = false;
      // SIGTERM mid-stream; the broker closes client connections (320) before it closes the
      // store, and that close is when the SIGKILL lands
      void connectionClosed(conn).then(() => warren.process.kill('SIGKILL'));
      const outcome = await publishUntil(
        conn,
        '',
        'crash.shutdown',
        (confirmed) => confirmed >= 2000,
        () => {
          signalled = true;
          warren.process.kill('SIGTERM');
        },
      );
      expect(signalled).toBe(true);
      await warren.exited;
      await broker.crashAndRestart();
      const numbers = await drain(await broker.connect(), 'crash.shutdown');
      expect(strictlyIncreasing(numbers)).toEqual([]);
      expect([...outcome.confirmed].filter((x) => !numbers.includes(x)), 'confirmed but lost').toEqual([]);
    },
    TEST_TIMEOUT * 2,
  );
});
