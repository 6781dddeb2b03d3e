import type { Channel, ChannelModel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { closeEvent, connect, drain, expectChannelClose, openChannel, openConfirmChannel, uniqueName, withChannel } from './support/index.js';

const SERVER_NAMED = /^amq\.gen-[A-Za-z0-9_-]{22}$/;

const LOCKED = (queue: string): string =>
  `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${queue}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`;

/**
 * Publishes to `queue` through the default exchange on a confirm channel of `conn` and waits
 * for the confirms. RabbitMQ answers a (passive) queue.declare's counts ahead of deliveries it
 * has not yet processed, so counts are only asserted after publisher confirms.
 */
async function publishConfirmed(conn: ChannelModel, queue: string, bodies: string[]): Promise<void> {
  const ch = await openConfirmChannel(conn);
  for (const body of bodies) ch.sendToQueue(queue, Buffer.from(body));
  await ch.waitForConfirms();
  await ch.close();
}

async function deleteQueues(...names: string[]): Promise<void> {
  await withChannel(async (ch) => {
    for (const name of names) await ch.deleteQueue(name);
  });
}

/**
 * Resolves once a passive declare of `queue` fails with 404. RabbitMQ removes an auto-delete
 * queue just after answering the basic.cancel / channel.close that released its last consumer,
 * so this retries with round trips (never timers), a bounded number of times.
 */
async function expectQueueGone(conn: ChannelModel, queue: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const ch = await openChannel(conn);
    const closed = closeEvent(ch);
    const err = await ch.checkQueue(queue).then(
      () => null,
      (e: { code?: number }) => e,
    );
    if (err) {
      await closed;
      expect(err.code).toBe(404);
      return;
    }
    await ch.close();
  }
  throw new Error(`queue ${queue} still exists`);
}

describe('queue.declare', () => {
  it('an empty name makes the server generate "amq.gen-…" (22 url-safe base64 characters)', async () => {
    await withChannel(async (ch) => {
      const a = await ch.assertQueue('', { exclusive: true });
      const b = await ch.assertQueue('', { exclusive: true });
      expect(a.queue).toMatch(SERVER_NAMED);
      expect(b.queue).toMatch(SERVER_NAMED);
      expect(a.queue).not.toBe(b.queue);
      expect(a).toEqual({ queue: a.queue, messageCount: 0, consumerCount: 0 });
    });
  });

  it('redeclaring identically is ok and returns the same name', async () => {
    const name = uniqueName('q');
    await withChannel(async (ch) => {
      const options = { durable: false, arguments: { 'x-message-ttl': 60000 } };
      expect(await ch.assertQueue(name, options)).toEqual({ queue: name, messageCount: 0, consumerCount: 0 });
      expect(await ch.assertQueue(name, options)).toEqual({ queue: name, messageCount: 0, consumerCount: 0 });
      await ch.deleteQueue(name);
    });
  });

  it('declare-ok counts ready messages (not unacked ones) and consumers', async () => {
    const name = uniqueName('q');
    await withChannel(async (ch, conn) => {
      await ch.assertQueue(name, { exclusive: true });
      await publishConfirmed(conn, name, ['a', 'b', 'c']);
      expect(await ch.checkQueue(name)).toEqual({ queue: name, messageCount: 3, consumerCount: 0 });
      await ch.prefetch(1);
      let delivered!: () => void;
      const firstDelivery = new Promise<void>((resolve) => (delivered = resolve));
      await ch.consume(name, () => delivered(), { noAck: false });
      await firstDelivery;
      // one message is out, unacked: only the two ready ones count
      expect(await ch.assertQueue(name, { exclusive: true })).toEqual({ queue: name, messageCount: 2, consumerCount: 1 });
      expect(await ch.checkQueue(name)).toEqual({ queue: name, messageCount: 2, consumerCount: 1 });
    });
  });

  it('passive on a missing queue → channel error 404 NOT_FOUND', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const name = uniqueName('q-missing');
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no queue '${name}' in vhost '/'`, method: [50, 10] }, () => ch.checkQueue(name));
    } finally {
      await conn.close();
    }
  });

  it('passive with an empty name → 404 NOT_FOUND for queue \'\' (no "last declared queue" shortcut for declare)', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await ch.assertQueue('', { exclusive: true });
      await expectChannelClose(ch, { code: 404, text: "NOT_FOUND - no queue '' in vhost '/'" }, () => ch.checkQueue(''));
    } finally {
      await conn.close();
    }
  });

  it('a name starting with "amq." → channel error 403 ACCESS_REFUSED (a passive declare of one is a plain 404)', async () => {
    const conn = await connect();
    try {
      const name = `amq.${uniqueName('q')}`;
      const ch = await openChannel(conn);
      await expectChannelClose(ch, { code: 403, text: `ACCESS_REFUSED - queue name '${name}' contains reserved prefix 'amq.*'`, method: [50, 10] }, () =>
        ch.assertQueue(name),
      );
      const ch2 = await openChannel(conn);
      await expectChannelClose(ch2, { code: 404, text: `NOT_FOUND - no queue '${name}' in vhost '/'` }, () => ch2.checkQueue(name));
    } finally {
      await conn.close();
    }
  });

  describe('redeclare with different properties', () => {
    const name = uniqueName('q');
    const original = { durable: false, arguments: { 'x-message-ttl': 1000 } };

    async function redeclare(options: Parameters<Channel['assertQueue']>[1], code: number, text: string): Promise<void> {
      const conn = await connect();
      try {
        const setup = await openChannel(conn);
        await setup.assertQueue(name, original);
        const ch = await openChannel(conn);
        await expectChannelClose(ch, { code, text, method: [50, 10] }, () => ch.assertQueue(name, options));
        // the queue keeps its original definition
        expect(await setup.assertQueue(name, original)).toMatchObject({ queue: name });
      } finally {
        await conn.close();
      }
    }

    it('x-message-ttl differs → 406 PRECONDITION_FAILED', async () => {
      try {
        await redeclare(
          { durable: false, arguments: { 'x-message-ttl': 2000 } },
          406,
          `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${name}' in vhost '/': received '2000' but current is '1000'`,
        );
      } finally {
        await deleteQueues(name);
      }
    });

    it('x-message-ttl missing on redeclare → 406 (the type is the one the first declarer sent: amqplib encodes 1000 as a short)', async () => {
      try {
        await redeclare(
          { durable: false },
          406,
          `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${name}' in vhost '/': received none but current is the value '1000' of type 'short'`,
        );
      } finally {
        await deleteQueues(name);
      }
    });

    it('an added argument → 406', async () => {
      try {
        await redeclare(
          { durable: false, arguments: { 'x-message-ttl': 1000, 'x-max-length': 5 } },
          406,
          `PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '${name}' in vhost '/': received the value '5' of type 'byte' but current is none`,
        );
      } finally {
        await deleteQueues(name);
      }
    });

    it('durable differs → 406', async () => {
      try {
        await redeclare(
          { durable: true, arguments: { 'x-message-ttl': 1000 } },
          406,
          `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${name}' in vhost '/': received 'true' but current is 'false'`,
        );
      } finally {
        await deleteQueues(name);
      }
    });

    it('auto_delete differs → 406', async () => {
      try {
        await redeclare(
          { durable: false, autoDelete: true, arguments: { 'x-message-ttl': 1000 } },
          406,
          `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '${name}' in vhost '/': received 'true' but current is 'false'`,
        );
      } finally {
        await deleteQueues(name);
      }
    });

    it('exclusive differs → 405 RESOURCE_LOCKED (not 406)', async () => {
      try {
        await redeclare({ durable: false, exclusive: true, arguments: { 'x-message-ttl': 1000 } }, 405, LOCKED(name));
      } finally {
        await deleteQueues(name);
      }
    });
  });

  it.each([
    ['a string x-message-ttl', { 'x-message-ttl': 'abc' }, `"expected integer, got longstr"`],
    ['a negative x-message-ttl', { 'x-message-ttl': -1 }, '{value_negative,-1}'],
    ['a negative x-max-length', { 'x-max-length': -1 }, '{value_negative,-1}'],
  ])('%s → channel error 406 PRECONDITION_FAILED (invalid arg)', async (_what, args, detail) => {
    const conn = await connect();
    const name = uniqueName('q');
    try {
      const ch = await openChannel(conn);
      const arg = Object.keys(args)[0]!;
      const { text: replyText } = await expectChannelClose(
        ch,
        { code: 406, text: new RegExp(`^PRECONDITION_FAILED - invalid arg '${arg}' for queue '${name}' in vhost '/': `) },
        () => ch.assertQueue(name, { arguments: args }),
      );
      // RabbitMQ appends an Erlang-formatted reason, e.g. {value_negative,-1}
      expect(replyText.endsWith(detail)).toBe(true);
    } finally {
      await conn.close();
    }
  });

  it('unknown x-arguments are accepted and ignored', async () => {
    const name = uniqueName('q');
    await withChannel(async (ch) => {
      expect(await ch.assertQueue(name, { arguments: { 'x-warren-unknown': 1 } })).toMatchObject({ queue: name });
      await ch.deleteQueue(name);
    });
  });
});

describe('queue.declare exclusive', () => {
  it.each([
    ['queue.declare', (ch: Channel, q: string) => ch.assertQueue(q, { exclusive: true }), [50, 10]],
    ['queue.declare (non-exclusive)', (ch: Channel, q: string) => ch.assertQueue(q, { exclusive: false }), [50, 10]],
    ['queue.declare passive', (ch: Channel, q: string) => ch.checkQueue(q), [50, 10]],
    ['basic.consume', (ch: Channel, q: string) => ch.consume(q, () => {}), [60, 20]],
    ['basic.get', (ch: Channel, q: string) => ch.get(q), [60, 70]],
    ['queue.delete', (ch: Channel, q: string) => ch.deleteQueue(q), [50, 40]],
    ['queue.purge', (ch: Channel, q: string) => ch.purgeQueue(q), [50, 30]],
    ['queue.bind', (ch: Channel, q: string) => ch.bindQueue(q, 'amq.direct', 'k'), [50, 20]],
  ] as const)('%s from another connection → channel error 405 RESOURCE_LOCKED', async (_method, act, [classId, methodId]) => {
    const owner = await connect();
    const intruder = await connect();
    try {
      const ownerCh = await openChannel(owner);
      const { queue } = await ownerCh.assertQueue(uniqueName('q-excl'), { exclusive: true });
      const ch = await openChannel(intruder);
      await expectChannelClose(ch, { code: 405, text: LOCKED(queue), method: [classId, methodId] }, () => act(ch, queue));
      // the owner is unaffected and the queue still exists
      expect(await ownerCh.checkQueue(queue)).toMatchObject({ queue });
    } finally {
      await intruder.close();
      await owner.close();
    }
  });

  it('another connection may still publish to it; queue.unbind from it → 405 only when the binding exists (RabbitMQ 3.10)', async () => {
    const owner = await connect();
    const other = await connect();
    try {
      const ownerCh = await openChannel(owner);
      const { queue } = await ownerCh.assertQueue('', { exclusive: true });
      await ownerCh.bindQueue(queue, 'amq.direct', queue);
      const ch = await openConfirmChannel(other);
      ch.sendToQueue(queue, Buffer.from('from other'));
      ch.publish('amq.direct', queue, Buffer.from('via amq.direct'));
      await ch.waitForConfirms();
      expect(await drain(ownerCh, queue)).toEqual(['from other', 'via amq.direct']);
      // unbinding a binding that does not exist touches nothing, so it is not locked
      expect(await ch.unbindQueue(queue, 'amq.direct', uniqueName('nothere'))).toEqual({});
      // but removing an existing binding is
      await expectChannelClose(ch, { code: 405, text: LOCKED(queue) }, () => ch.unbindQueue(queue, 'amq.direct', queue));
    } finally {
      await other.close();
      await owner.close();
    }
  });

  it('is usable from any channel of the owning connection and survives the declaring channel', async () => {
    const conn = await connect();
    try {
      const ch1 = await openChannel(conn);
      const { queue } = await ch1.assertQueue('', { exclusive: true });
      await ch1.close();
      const ch2 = await openChannel(conn);
      ch2.sendToQueue(queue, Buffer.from('x'));
      expect(await drain(ch2, queue)).toEqual(['x']);
    } finally {
      await conn.close();
    }
  });

  it('is deleted when its connection closes (already gone when close-ok arrives)', async () => {
    const owner = await connect();
    const ch = await openChannel(owner);
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await owner.close();
    // RabbitMQ deletes exclusive queues before it sends connection.close-ok
    const conn = await connect();
    try {
      const probe = await openChannel(conn);
      await expectChannelClose(probe, { code: 404, text: `NOT_FOUND - no queue '${queue}' in vhost '/'` }, () => probe.checkQueue(queue));
    } finally {
      await conn.close();
    }
  });
});

describe('queue.declare auto-delete', () => {
  it('is deleted after its last consumer cancels, not before', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const { queue } = await ch.assertQueue('', { autoDelete: true });
      const c1 = await ch.consume(queue, () => {});
      const c2 = await ch.consume(queue, () => {});
      await ch.cancel(c1.consumerTag);
      expect(await ch.checkQueue(queue)).toEqual({ queue, messageCount: 0, consumerCount: 1 });
      await ch.cancel(c2.consumerTag);
      await expectQueueGone(conn, queue);
    } finally {
      await conn.close();
    }
  });

  it('is deleted when the channel of its last consumer closes', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const { queue } = await ch.assertQueue('', { autoDelete: true });
      const consumerCh = await openChannel(conn);
      await consumerCh.consume(queue, () => {});
      await consumerCh.close();
      await expectQueueGone(conn, queue);
    } finally {
      await conn.close();
    }
  });

  it('a queue that never had a consumer is not deleted', async () => {
    await withChannel(async (ch, conn) => {
      const { queue } = await ch.assertQueue('', { autoDelete: true });
      await publishConfirmed(conn, queue, ['x']);
      expect(await ch.checkQueue(queue)).toEqual({ queue, messageCount: 1, consumerCount: 0 });
      await ch.deleteQueue(queue);
    });
  });
});

describe('queue.purge', () => {
  it('removes ready messages and returns their count; unacked deliveries are kept', async () => {
    await withChannel(async (ch, conn) => {
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await publishConfirmed(conn, queue, ['a', 'b', 'c', 'd']);
      const held = await ch.get(queue, { noAck: false });
      expect(held && held.content.toString()).toBe('a');
      expect(await ch.purgeQueue(queue)).toEqual({ messageCount: 3 });
      expect(await ch.checkQueue(queue)).toMatchObject({ messageCount: 0 });
      // the unacked message survives the purge and comes back on requeue
      ch.nack(held as Exclude<typeof held, false>, false, true);
      expect(await drain(ch, queue)).toEqual(['a']);
      expect(await ch.purgeQueue(queue)).toEqual({ messageCount: 0 });
    });
  });

  it('on a missing queue → channel error 404 NOT_FOUND', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const name = uniqueName('q-missing');
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no queue '${name}' in vhost '/'`, method: [50, 30] }, () => ch.purgeQueue(name));
    } finally {
      await conn.close();
    }
  });
});

describe('queue.delete', () => {
  it('returns the number of ready messages deleted; the queue is gone', async () => {
    const name = uniqueName('q');
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await ch.assertQueue(name);
      await publishConfirmed(conn, name, ['m0', 'm1', 'm2', 'm3']);
      expect(await ch.deleteQueue(name)).toEqual({ messageCount: 4 });
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no queue '${name}' in vhost '/'` }, () => ch.checkQueue(name));
    } finally {
      await conn.close();
    }
  });

  it('deleting a missing queue is ok with messageCount 0 (RabbitMQ 3.10)', async () => {
    await withChannel(async (ch) => {
      expect(await ch.deleteQueue(uniqueName('q-missing'))).toEqual({ messageCount: 0 });
    });
  });

  it('ifUnused with a consumer → channel error 406 PRECONDITION_FAILED', async () => {
    const conn = await connect();
    try {
      const owner = await openChannel(conn);
      const { queue } = await owner.assertQueue('', { exclusive: true });
      await owner.consume(queue, () => {});
      const ch = await openChannel(conn);
      await expectChannelClose(ch, { code: 406, text: `PRECONDITION_FAILED - queue '${queue}' in vhost '/' in use`, method: [50, 40] }, () =>
        ch.deleteQueue(queue, { ifUnused: true }),
      );
      expect(await owner.checkQueue(queue)).toMatchObject({ consumerCount: 1 });
    } finally {
      await conn.close();
    }
  });

  it('ifEmpty with messages → channel error 406 PRECONDITION_FAILED; ifUnused/ifEmpty succeed when they hold', async () => {
    const conn = await connect();
    try {
      const owner = await openChannel(conn);
      const { queue } = await owner.assertQueue('', { exclusive: true });
      await publishConfirmed(conn, queue, ['x']);
      const ch = await openChannel(conn);
      await expectChannelClose(ch, { code: 406, text: `PRECONDITION_FAILED - queue '${queue}' in vhost '/' not empty` }, () =>
        ch.deleteQueue(queue, { ifEmpty: true }),
      );
      expect(await owner.deleteQueue(queue, { ifUnused: true })).toEqual({ messageCount: 1 });
      const { queue: empty } = await owner.assertQueue('', { exclusive: true });
      expect(await owner.deleteQueue(empty, { ifEmpty: true, ifUnused: true })).toEqual({ messageCount: 0 });
    } finally {
      await conn.close();
    }
  });

  it("removes the queue's bindings: a re-declared queue of the same name is not bound", async () => {
    const name = uniqueName('q');
    await withChannel(async (ch) => {
      await ch.assertQueue(name);
      await ch.bindQueue(name, 'amq.direct', name);
      await ch.deleteQueue(name);
      await ch.assertQueue(name);
      ch.publish('amq.direct', name, Buffer.from('x'));
      expect(await drain(ch, name)).toEqual([]);
      await ch.deleteQueue(name);
    });
  });
});

describe('queue.bind / queue.unbind', () => {
  it('routes by binding key and stops after unbind; binding twice is idempotent', async () => {
    const x = uniqueName('x');
    await withChannel(async (ch) => {
      await ch.assertExchange(x, 'direct', { durable: false });
      const { queue } = await ch.assertQueue('', { exclusive: true });
      expect(await ch.bindQueue(queue, x, 'k')).toEqual({});
      await ch.bindQueue(queue, x, 'k');
      ch.publish(x, 'k', Buffer.from('hit'));
      ch.publish(x, 'other', Buffer.from('miss'));
      expect(await drain(ch, queue)).toEqual(['hit']);
      expect(await ch.unbindQueue(queue, x, 'k')).toEqual({});
      ch.publish(x, 'k', Buffer.from('after unbind'));
      expect(await drain(ch, queue)).toEqual([]);
      await ch.deleteExchange(x);
    });
  });

  it('bind to a missing exchange → channel error 404 NOT_FOUND', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const x = uniqueName('x-missing');
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no exchange '${x}' in vhost '/'`, method: [50, 20] }, () => ch.bindQueue(queue, x, 'k'));
    } finally {
      await conn.close();
    }
  });

  it('bind a missing queue → channel error 404 NOT_FOUND', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const q = uniqueName('q-missing');
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no queue '${q}' in vhost '/'` }, () => ch.bindQueue(q, 'amq.direct', 'k'));
    } finally {
      await conn.close();
    }
  });

  it('bind with both missing reports the exchange', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const x = uniqueName('x-missing');
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no exchange '${x}' in vhost '/'` }, () => ch.bindQueue(uniqueName('q-missing'), x, 'k'));
    } finally {
      await conn.close();
    }
  });

  it('unbinding a binding that does not exist is ok, even for a missing queue or exchange (RabbitMQ 3.10)', async () => {
    await withChannel(async (ch) => {
      const { queue } = await ch.assertQueue('', { exclusive: true });
      expect(await ch.unbindQueue(queue, 'amq.direct', uniqueName('nothere'))).toEqual({});
      expect(await ch.unbindQueue(uniqueName('q-missing'), 'amq.direct', 'k')).toEqual({});
      expect(await ch.unbindQueue(queue, uniqueName('x-missing'), 'k')).toEqual({});
    });
  });
});

describe("empty queue name = the channel's last declared queue", () => {
  it('queue.bind, basic.get, queue.purge and queue.delete with "" act on the queue last declared on the channel', async () => {
    await withChannel(async (ch) => {
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue('', 'amq.fanout', '');
      ch.publish('amq.fanout', '', Buffer.from('via shortcut'));
      ch.sendToQueue(queue, Buffer.from('direct'));
      const got = await ch.get('', { noAck: true });
      expect(got && got.content.toString()).toBe('via shortcut');
      await ch.unbindQueue('', 'amq.fanout', '');
      expect(await ch.purgeQueue('')).toEqual({ messageCount: 1 });
      expect(await ch.deleteQueue('')).toEqual({ messageCount: 0 });
    });
  });

  it.each([
    ['queue.bind', (ch: Channel) => ch.bindQueue('', 'amq.fanout', ''), [50, 20]],
    ['queue.purge', (ch: Channel) => ch.purgeQueue(''), [50, 30]],
    ['queue.delete', (ch: Channel) => ch.deleteQueue(''), [50, 40]],
    ['basic.get', (ch: Channel) => ch.get(''), [60, 70]],
    ['basic.consume', (ch: Channel) => ch.consume('', () => {}), [60, 20]],
  ] as const)('%s with "" and no queue declared on the channel → 404 NOT_FOUND', async (_method, act, [classId, methodId]) => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await expectChannelClose(ch, { code: 404, text: 'NOT_FOUND - no previously declared queue', method: [classId, methodId] }, () => act(ch));
    } finally {
      await conn.close();
    }
  });
});
