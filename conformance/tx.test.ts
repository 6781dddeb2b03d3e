import type { Channel, ChannelModel } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  drain,
  expectChannelClose,
  getOne,
  openChannel,
  openConfirmChannel,
  type ReturnedMessage,
  settle,
  takeWhenReady,
  txCommit,
  txRollback,
  txSelect,
  uniqueName,
  withChannel,
} from './support/index.js';

// spec: tx class 90: select 10, commit 20, rollback 30
const TX = 90;

/** A second connection that observes queues from outside the transaction and deletes them afterwards. */
let observer: ChannelModel;
let obs: Channel;
const toDelete: string[] = [];

beforeAll(async () => {
  observer = await connect();
  obs = await openChannel(observer);
});

afterEach(async () => {
  while (toDelete.length > 0) await obs.deleteQueue(toDelete.pop()!);
});

afterAll(async () => {
  await observer.close().catch(() => {});
});

async function sharedQueue(): Promise<string> {
  const queue = uniqueName('tx');
  await obs.assertQueue(queue, { durable: false });
  toDelete.push(queue);
  return queue;
}

/** Publishes from the observer; the passive declare after it returns once the queue holds them. */
async function seed(q: string, bodies: string[]): Promise<void> {
  for (const b of bodies) obs.sendToQueue(q, Buffer.from(b));
  await obs.checkQueue(q);
}

const ready = async (q: string): Promise<number> => (await obs.checkQueue(q)).messageCount;

/** Gets everything from q on the observer: [body, redelivered] pairs. */
async function drainObserved(q: string): Promise<[string, boolean][]> {
  const out: [string, boolean][] = [];
  for (;;) {
    const m = await obs.get(q, { noAck: true });
    if (m === false) return out;
    out.push([m.content.toString(), m.fields.redelivered]);
  }
}

describe('tx.select', () => {
  it('answers select-ok; selecting again is fine', async () => {
    await withChannel(async (ch) => {
      await txSelect(ch);
      await txSelect(ch);
      await txCommit(ch);
    });
  });

  it('on a confirm channel → channel error 406 PRECONDITION_FAILED', async () => {
    const conn = await connect();
    try {
      const ch = await openConfirmChannel(conn);
      await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - cannot switch from confirm to tx mode', method: [TX, 10] }, () => txSelect(ch));
      await (await openChannel(conn)).checkExchange('amq.direct');
    } finally {
      await conn.close().catch(() => {});
    }
  });
});

describe('tx.commit', () => {
  it('publishes are routed only on commit; the channel stays transactional afterwards', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      await txSelect(ch);
      ch.sendToQueue(q, Buffer.from('1'));
      ch.sendToQueue(q, Buffer.from('2'));
      // the tx channel itself does not see them either
      expect(await ch.get(q)).toBe(false);
      expect(await ready(q)).toBe(0);
      await txCommit(ch);
      expect(await ready(q)).toBe(2);
      // a new transaction starts at once
      ch.sendToQueue(q, Buffer.from('3'));
      await ch.checkQueue(q);
      expect(await ready(q)).toBe(2);
      await txCommit(ch);
      expect(await drainObserved(q)).toEqual([
        ['1', false],
        ['2', false],
        ['3', false],
      ]);
    });
  });

  it('mandatory + unroutable inside a tx: basic.return comes at commit, before commit-ok', async () => {
    await withChannel(async (ch) => {
      await txSelect(ch);
      const order: string[] = [];
      ch.on('return', (m: ReturnedMessage) => order.push(`return:${m.fields.replyCode}`));
      ch.publish('amq.direct', uniqueName('nowhere'), Buffer.from('x'), { mandatory: true });
      await ch.checkExchange('amq.direct');
      order.push('before-commit');
      await txCommit(ch);
      order.push('commit-ok');
      expect(order).toEqual(['before-commit', 'return:312', 'commit-ok']);
    });
  });

  it('acks take effect only on commit', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      await seed(q, ['a', 'b']);
      await txSelect(ch);
      const a = await getOne(ch, q);
      const b = await getOne(ch, q);
      ch.ack(a);
      await txCommit(ch);
      ch.ack(b);
      // b's ack is pending in the open transaction: closing the channel discards it
      await ch.close();
      expect(await takeWhenReady(q, 1)).toEqual([['b', true]]);
    });
  });

  it('reject with requeue inside a tx takes effect on commit', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      await seed(q, ['a']);
      await txSelect(ch);
      const a = await getOne(ch, q);
      ch.reject(a, true);
      expect(await settle(ch, q)).toBe(0);
      await txCommit(ch);
      expect(await takeWhenReady(q, 1)).toEqual([['a', true]]);
    });
  });

  it('without tx.select → channel error 406 PRECONDITION_FAILED', async () => {
    await withChannel(async (ch, conn) => {
      await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - channel is not transactional', method: [TX, 20] }, () => txCommit(ch));
      await (await openChannel(conn)).checkExchange('amq.direct');
    });
  });
});

describe('tx.rollback', () => {
  it('discards the publishes of the transaction', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      await txSelect(ch);
      ch.sendToQueue(q, Buffer.from('discarded'));
      await txRollback(ch);
      ch.sendToQueue(q, Buffer.from('kept'));
      await txCommit(ch);
      expect(await drain(obs, q)).toEqual(['kept']);
    });
  });

  it('leaves acks of the transaction undone: the messages stay unacked', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      await seed(q, ['a', 'b']);
      await txSelect(ch);
      const a = await getOne(ch, q);
      const b = await getOne(ch, q);
      ch.ack(a);
      ch.ack(b);
      await txRollback(ch);
      // still unacked, so not ready
      expect(await ready(q)).toBe(0);
      // and still ackable: acking a again is no "unknown delivery tag" error
      ch.ack(a);
      await txCommit(ch);
      await ch.close();
      // b was never acked for real and comes back on close
      expect(await takeWhenReady(q, 1)).toEqual([['b', true]]);
    });
  });

  it('without tx.select → channel error 406 PRECONDITION_FAILED', async () => {
    await withChannel(async (ch) => {
      await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - channel is not transactional', method: [TX, 30] }, () => txRollback(ch));
    });
  });
});
