import type { ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import {
  confirmSelect,
  connect,
  drain,
  expectChannelClose,
  openConfirmChannel,
  type ReturnedMessage,
  txSelect,
  uniqueName,
  withChannel,
} from './support/index.js';

/** Runs fn with a fresh connection and confirm channel; always closes the connection. */
async function withConfirmChannel(fn: (ch: ConfirmChannel) => Promise<void>): Promise<void> {
  const conn = await connect();
  try {
    await fn(await openConfirmChannel(conn));
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Publishes and resolves with the confirm outcome: null for basic.ack, the Error for basic.nack / close. */
function publishConfirmed(ch: ConfirmChannel, exchange: string, routingKey: string, body: string, options?: object): Promise<Error | null> {
  return new Promise((resolve) => {
    ch.publish(exchange, routingKey, Buffer.from(body), options, (err) => resolve(err ?? null));
  });
}

/** Collects the delivery tags the broker confirmed (expanding multiple=true acks). */
function trackAcks(ch: ConfirmChannel): Set<number> {
  const confirmed = new Set<number>();
  let highest = 0;
  ch.on('ack', (fields: { deliveryTag: number; multiple: boolean }) => {
    if (fields.multiple) for (let t = highest + 1; t <= fields.deliveryTag; t++) confirmed.add(t);
    else confirmed.add(fields.deliveryTag);
    highest = Math.max(highest, fields.deliveryTag);
  });
  return confirmed;
}

describe('confirm.select', () => {
  it('puts the channel in confirm mode; selecting again is fine', async () => {
    await withConfirmChannel(async (ch) => {
      await confirmSelect(ch);
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      expect(await publishConfirmed(ch, '', q, 'x')).toBeNull();
    });
  });

  it('on a transactional channel → channel error 406 PRECONDITION_FAILED', async () => {
    await withChannel(async (ch) => {
      await txSelect(ch);
      // spec: confirm.select is class 85 method 10
      await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - cannot switch from tx to confirm mode', method: [85, 10] }, () =>
        confirmSelect(ch),
      );
    });
  });
});

describe('basic.ack (publisher confirms)', () => {
  it('every publish is acked; delivery tags count from 1 per channel', async () => {
    await withConfirmChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      const confirmed = trackAcks(ch);
      const outcomes: Promise<Error | null>[] = [];
      for (let i = 0; i < 50; i++) outcomes.push(publishConfirmed(ch, '', q, `m${i}`));
      expect(await Promise.all(outcomes)).toEqual(new Array(50).fill(null));
      await ch.waitForConfirms();
      expect([...confirmed].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect((await ch.checkQueue(q)).messageCount).toBe(50);
    });
  });

  it('a message routed to several queues is acked once', async () => {
    await withConfirmChannel(async (ch) => {
      const q1 = (await ch.assertQueue('', { exclusive: true })).queue;
      const q2 = (await ch.assertQueue('', { exclusive: true })).queue;
      const key = uniqueName('fan');
      await ch.bindQueue(q1, 'amq.direct', key);
      await ch.bindQueue(q2, 'amq.direct', key);
      const tags: number[] = [];
      ch.on('ack', (f: { deliveryTag: number }) => tags.push(f.deliveryTag));
      expect(await publishConfirmed(ch, 'amq.direct', key, 'x')).toBeNull();
      expect(await publishConfirmed(ch, 'amq.direct', key, 'y')).toBeNull();
      expect(tags).toEqual([1, 2]);
      expect(await drain(ch, q1)).toEqual(['x', 'y']);
      expect(await drain(ch, q2)).toEqual(['x', 'y']);
    });
  });

  it('an unroutable message is acked too', async () => {
    await withConfirmChannel(async (ch) => {
      expect(await publishConfirmed(ch, 'amq.direct', uniqueName('nowhere'), 'x')).toBeNull();
      await ch.waitForConfirms();
    });
  });

  it('mandatory + unroutable: basic.return arrives before the basic.ack', async () => {
    await withConfirmChannel(async (ch) => {
      const order: string[] = [];
      ch.on('return', (msg: ReturnedMessage) => order.push(`return:${msg.fields.replyCode}:${msg.content.toString()}`));
      const outcome = await publishConfirmed(ch, 'amq.direct', uniqueName('nowhere'), 'bounced', { mandatory: true });
      order.push(`ack:${String(outcome)}`);
      expect(order).toEqual(['return:312:bounced', 'ack:null']);
    });
  });

  it('persistent messages to a durable queue are acked', async () => {
    await withConfirmChannel(async (ch) => {
      const q = uniqueName('confirm-durable');
      await ch.assertQueue(q, { durable: true });
      try {
        const outcomes = [1, 2, 3].map((i) => publishConfirmed(ch, '', q, `p${i}`, { persistent: true }));
        expect(await Promise.all(outcomes)).toEqual([null, null, null]);
        expect((await ch.checkQueue(q)).messageCount).toBe(3);
      } finally {
        await ch.deleteQueue(q);
      }
    });
  });
});

describe('basic.nack (publisher confirms)', () => {
  it('a full queue with x-overflow=reject-publish nacks the publish', async () => {
    await withConfirmChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } })).queue;
      const nacks: number[] = [];
      ch.on('nack', (f: { deliveryTag: number }) => nacks.push(f.deliveryTag));
      expect(await publishConfirmed(ch, '', q, 'fits')).toBeNull();
      const second = await publishConfirmed(ch, '', q, 'rejected');
      expect(second).toBeInstanceOf(Error);
      expect(nacks).toEqual([2]);
      expect(await drain(ch, q)).toEqual(['fits']);
    });
  });
});

describe('basic.publish (confirm mode)', () => {
  it('to a missing exchange closes the channel 404; unconfirmed publishes fail, earlier ones stay acked', async () => {
    await withConfirmChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      expect(await publishConfirmed(ch, '', q, 'ok')).toBeNull();
      const x = uniqueName('missing-x');
      let outcome!: Promise<Error | null>;
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no exchange '${x}' in vhost '/'` }, () => {
        outcome = publishConfirmed(ch, x, 'k', 'lost');
      });
      // amqplib fails the callbacks of publishes the broker never confirmed
      expect(await outcome).toBeInstanceOf(Error);
    });
  });
});
