import { describe, expect, it } from 'vitest';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import {
  childBrokerFixture,
  commitBarrier,
  drainNumbers,
  openChannel,
  openConfirmChannel,
  type WarrenChild,
} from './harness.js';

const QUEUE = 'crash';
/**
 * Unconfirmed publishes allowed in flight. Group commit makes a batch about a window long,
 * and the acked prefix is proven by a confirm one or two batches later, so an early kill
 * point needs a small window to be reached near its count.
 */
function windowFor(killAfter: number): number {
  return Math.min(1000, Math.max(10, Math.floor(killAfter / 2)));
}
const CONSUMER_PREFETCH = 200;
/** a run that never reaches its kill point must not publish forever */
const MAX_PUBLISHES = 100_000;

interface StreamOutcome {
  /** numbers whose publish was confirmed (basic.ack) before the kill */
  readonly confirmed: Set<number>;
  /** numbers nacked before the kill (must stay empty) */
  readonly nacked: number[];
  /** highest number handed to the client library */
  readonly published: number;
  /** 1..ackedPrefix were acked by the consumer, and a commit barrier proved it, before the kill */
  readonly ackedPrefix: number;
  /** the consumer saw numbers out of order before the kill (must stay empty) */
  readonly consumerDisorder: string[];
}

/**
 * Streams numbered persistent publishes on a confirm channel as fast as the window allows
 * while a consumer acks the first `ackedPrefix` messages; the confirm callback that sees the
 * `killAfter`-th confirm (once the acked prefix is proven on disk) SIGKILLs the broker.
 */
function streamUntilKilled(warren: WarrenChild, pubConn: ChannelModel, consConn: ChannelModel, killAfter: number, bodySize = 0): Promise<StreamOutcome> {
  // the number, padded with spaces (Number() ignores them) to the body size asked for
  const body = (n: number): Buffer => Buffer.from(bodySize === 0 ? String(n) : String(n).padEnd(bodySize, ' '));
  const ackedPrefix = Math.floor(killAfter / 4);
  const window = windowFor(killAfter);
  const confirmed = new Set<number>();
  const nacked: number[] = [];
  const consumerDisorder: string[] = [];
  let published = 0;
  let outstanding = 0;
  let prefixSettled = false;
  let killed = false;
  let wake: (() => void) | null = null;

  const kill = (): void => {
    if (killed) return;
    killed = true;
    warren.process.kill('SIGKILL');
    wake?.();
  };
  const maybeKill = (): void => {
    if (prefixSettled && confirmed.size >= killAfter) kill();
  };

  return new Promise<StreamOutcome>((resolve, reject) => {
    const run = async (): Promise<void> => {
      const pub: ConfirmChannel = await openConfirmChannel(pubConn);
      await pub.assertQueue(QUEUE, { durable: true });

      const cons = await openChannel(consConn);
      await cons.prefetch(CONSUMER_PREFETCH);
      let expected = 1;
      await cons.consume(QUEUE, (m: ConsumeMessage | null) => {
        if (m === null || killed) return;
        const n = Number(m.content.toString());
        if (n !== expected) consumerDisorder.push(`expected ${String(expected)}, got ${String(n)}`);
        expected = n + 1;
        if (n > ackedPrefix) return; // delivered, never acked: must come back after the crash
        cons.ack(m);
        if (n === ackedPrefix) {
          // the barrier's confirm proves the acks (earlier frames on this connection) are committed
          commitBarrier(consConn).then(
            () => {
              prefixSettled = true;
              maybeKill();
            },
            (err: unknown) => {
              if (!killed) reject(err instanceof Error ? err : new Error(String(err)));
            },
          );
        }
      });

      const onConfirm = (n: number) => (err: unknown) => {
        outstanding--;
        if (killed) return; // a dying connection fails the rest: those are simply unconfirmed
        if (err === null || err === undefined) confirmed.add(n);
        else nacked.push(n);
        maybeKill();
        if (outstanding < window) wake?.();
      };

      while (!killed && published < MAX_PUBLISHES) {
        if (outstanding >= window) {
          await new Promise<void>((r) => (wake = r));
          wake = null;
          continue;
        }
        const n = published + 1;
        let flowing: boolean;
        try {
          flowing = pub.sendToQueue(QUEUE, body(n), { persistent: true }, onConfirm(n));
        } catch (err) {
          if (killed) break; // the channel noticed the dead broker first
          throw err;
        }
        published = n;
        outstanding++;
        if (!flowing) {
          await new Promise<void>((r) => {
            wake = r;
            pub.once('drain', r);
          });
          wake = null;
        }
      }
      if (!killed) throw new Error(`published ${String(published)} without reaching the kill point`);
      resolve({ confirmed, nacked, published, ackedPrefix, consumerDisorder });
    };
    run().catch(reject);
  });
}

describe('crash: kill -9 in the middle of a confirmed publish stream', () => {
  const broker = childBrokerFixture();

  it.each([
    [100, 0],
    [2000, 0],
    [7000, 0],
    // bodies big enough for the body files (store/body-files.ts)
    [1500, 20_000],
  ])(
    'killed after %i confirms (body %i bytes padded): every confirmed message exactly once, in order; the acked prefix stays gone',
    async (killAfter, bodySize) => {
      const warren = await broker.start();
      const pubConn = await broker.connect();
      const consConn = await broker.connect();

      const outcome = await streamUntilKilled(warren, pubConn, consConn, killAfter, bodySize);
      await broker.crashAndRestart();
      expect(outcome.nacked).toEqual([]);
      expect(outcome.consumerDisorder).toEqual([]);
      expect(outcome.confirmed.size).toBeGreaterThanOrEqual(killAfter);

      const conn = await broker.connect();
      const ch = await openChannel(conn);
      const count = (await ch.checkQueue(QUEUE)).messageCount;
      const numbers = await drainNumbers(conn, QUEUE, count);
      expect((await ch.checkQueue(QUEUE)).messageCount).toBe(0);

      // order preserved and no duplicates: strictly increasing
      for (let i = 1; i < numbers.length; i++) {
        if (numbers[i]! <= numbers[i - 1]!) expect.fail(`position ${String(i)}: ${String(numbers[i])} after ${String(numbers[i - 1])}`);
      }
      const present = new Set(numbers);
      // nothing acked (and proven committed) before the kill reappears
      const reappeared = numbers.filter((n) => n <= outcome.ackedPrefix);
      expect(reappeared).toEqual([]);
      // every confirmed message past the acked prefix is there
      const lost = [...outcome.confirmed].filter((n) => n > outcome.ackedPrefix && !present.has(n));
      expect(lost).toEqual([]);
      // nothing that was never published shows up
      expect(numbers.filter((n) => !(n >= 1 && n <= outcome.published))).toEqual([]);
      // unconfirmed in-flight messages may or may not be there; the rest are the confirmed ones
      expect(count).toBeGreaterThanOrEqual(outcome.confirmed.size - outcome.ackedPrefix);
    },
    45_000,
  );
});
