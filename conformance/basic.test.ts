import type { Channel, ChannelModel, ConsumeMessage, Message } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  basicQos,
  bodyOf,
  basicRecover,
  connect,
  connectionUser,
  consumeInto,
  drain,
  expectChannelClose,
  expectConnectionClose,
  getOne,
  openChannel,
  publishRaw,
  settle,
  takeWhenReady,
  uniqueName,
  withChannel,
} from './support/index.js';

// spec: class/method ids that a server close names as the failing method
const BASIC = 60;
const BASIC_CONSUME = 20;
const BASIC_PUBLISH = 40;
const BASIC_GET = 70;
const BASIC_ACK = 80;
const BASIC_REJECT = 90;
const BASIC_NACK = 120;

/** One connection to create and delete named queues that must outlive a test's own channels. */
let admin: ChannelModel;
let adminCh: Channel;
const toDelete: string[] = [];

beforeAll(async () => {
  admin = await connect();
  adminCh = await openChannel(admin);
});

afterEach(async () => {
  while (toDelete.length > 0) await adminCh.deleteQueue(toDelete.pop()!);
});

afterAll(async () => {
  await admin.close().catch(() => {});
});

/** A named, non-exclusive queue deleted after the test (survives the test's channels and connections). */
async function sharedQueue(): Promise<string> {
  const queue = uniqueName('basic');
  await adminCh.assertQueue(queue, { durable: false });
  toDelete.push(queue);
  return queue;
}

async function exclusiveQueue(ch: Channel): Promise<string> {
  return (await ch.assertQueue('', { exclusive: true })).queue;
}

function publishAll(ch: Channel, queue: string, bodies: string[]): void {
  for (const b of bodies) ch.sendToQueue(queue, Buffer.from(b));
}

describe('basic.publish', () => {
  it('mandatory + unroutable → basic.return 312 NO_ROUTE with the message', async () => {
    await withChannel(async (ch) => {
      const key = uniqueName('no-route');
      const returned = once(ch, 'return') as Promise<[Message]>;
      ch.publish('amq.direct', key, Buffer.from('back to you'), { mandatory: true, messageId: 'm-1', headers: { h: 'v' } });
      const [msg] = await returned;
      expect(msg.fields).toMatchObject({ replyCode: 312, replyText: 'NO_ROUTE', exchange: 'amq.direct', routingKey: key });
      expect(msg.content.toString()).toBe('back to you');
      expect(msg.properties.messageId).toBe('m-1');
      expect(msg.properties.headers).toEqual({ h: 'v' });
      // the channel stays open
      await ch.checkExchange('amq.direct');
    });
  });

  it('mandatory + unroutable through the default exchange is returned too', async () => {
    await withChannel(async (ch) => {
      const key = uniqueName('no-queue');
      const returned = once(ch, 'return') as Promise<[Message]>;
      ch.publish('', key, Buffer.from('x'), { mandatory: true });
      const [msg] = await returned;
      expect(msg.fields).toMatchObject({ replyCode: 312, replyText: 'NO_ROUTE', exchange: '', routingKey: key });
    });
  });

  it('mandatory + routable is not returned', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      let returns = 0;
      ch.on('return', () => returns++);
      ch.sendToQueue(q, Buffer.from('routed'), { mandatory: true });
      expect(bodyOf(await ch.get(q, { noAck: true }))).toBe('routed');
      expect(returns).toBe(0);
    });
  });

  it('non-mandatory + unroutable is dropped silently', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      let returns = 0;
      ch.on('return', () => returns++);
      ch.publish('amq.direct', uniqueName('nowhere'), Buffer.from('dropped'));
      // barrier: a later mandatory publish that routes; any return for the first would precede it
      ch.sendToQueue(q, Buffer.from('marker'), { mandatory: true });
      expect(await drain(ch, q)).toEqual(['marker']);
      expect(returns).toBe(0);
    });
  });

  it('to a missing exchange → channel error 404 NOT_FOUND; the connection still works', async () => {
    await withChannel(async (ch, conn) => {
      const x = uniqueName('missing-x');
      const err = await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no exchange '${x}' in vhost '/'`, method: [BASIC, BASIC_PUBLISH] }, () =>
        ch.publish(x, 'k', Buffer.from('x')),
      );
      expect(err.message).toMatch(/^Channel closed by server: 404 \(NOT-FOUND\) with message "NOT_FOUND/);
      const ch2 = await openChannel(conn);
      await ch2.checkExchange('amq.direct');
    });
  });

  it('immediate=true → connection error 540 NOT_IMPLEMENTED; other connections unaffected', async () => {
    await withChannel(async (ch, conn) => {
      const err = await expectConnectionClose(conn, { code: 540, text: 'NOT_IMPLEMENTED - immediate=true' }, () => {
        publishRaw(ch, { exchange: 'amq.direct', routingKey: 'k', immediate: true }, {}, Buffer.from('x'));
        return ch.checkExchange('amq.direct');
      });
      expect(err.message).toMatch(/^Connection closed: 540 \(NOT-IMPLEMENTED\)/);
    });
  });

  it('a message published right before channel.close is still routed', async () => {
    await withChannel(async (ch, conn) => {
      const q = await exclusiveQueue(ch);
      ch.sendToQueue(q, Buffer.from('last words'));
      await ch.close();
      const ch2 = await openChannel(conn);
      expect(await drain(ch2, q)).toEqual(['last words']);
    });
  });

  it('to an internal exchange → channel error 403 ACCESS_REFUSED', async () => {
    await withChannel(async (ch, conn) => {
      const x = uniqueName('internal-x');
      await adminCh.assertExchange(x, 'direct', { internal: true, durable: false, autoDelete: false });
      try {
        await expectChannelClose(
          ch,
          { code: 403, text: `ACCESS_REFUSED - cannot publish to internal exchange '${x}' in vhost '/'`, method: [BASIC, BASIC_PUBLISH] },
          () => ch.publish(x, 'k', Buffer.from('x')),
        );
        await (await openChannel(conn)).checkExchange('amq.direct');
      } finally {
        await adminCh.deleteExchange(x);
      }
    });
  });

  it('to "amq.default" → 404: the default exchange is only reachable as ""', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      // RabbitMQ 3.10: publishing to "amq.default" is not an alias of ""
      await expectChannelClose(ch, { code: 404, text: "NOT_FOUND - no exchange 'amq.default' in vhost '/'" }, () =>
        ch.publish('amq.default', q, Buffer.from('x')),
      );
    });
  });

  it.each([
    ['abc', "PRECONDITION_FAILED - invalid expiration 'abc': no_integer"],
    ['-1', "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}"],
  ])('an invalid expiration %j → channel error 406 PRECONDITION_FAILED', async (expiration, replyText) => {
    await withChannel(async (ch, conn) => {
      const q = await sharedQueue();
      await expectChannelClose(ch, { code: 406, text: replyText, method: [BASIC, BASIC_PUBLISH] }, () => ch.sendToQueue(q, Buffer.from('x'), { expiration }));
      expect((await (await openChannel(conn)).checkQueue(q)).messageCount).toBe(0);
    });
  });

  it('every property round-trips as sent', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      const headers = {
        str: 'hello ✓',
        empty: '',
        int8: { '!': 'int8', value: -5 },
        uint8: { '!': 'uint8', value: 200 },
        int16: { '!': 'int16', value: -30000 },
        uint16: { '!': 'uint16', value: 60000 },
        int32: { '!': 'int32', value: -2_000_000_000 },
        uint32: { '!': 'uint32', value: 4_000_000_000 },
        int64: { '!': 'int64', value: 2 ** 40 + 3 },
        negInt64: { '!': 'int64', value: -(2 ** 40) },
        float: { '!': 'float', value: 1.5 },
        double: 3.25,
        decimal: { '!': 'decimal', value: { places: 2, digits: 12345 } },
        ts: { '!': 'timestamp', value: 1_700_000_000 },
        yes: true,
        no: false,
        nothing: null,
        bytes: Buffer.from([0, 1, 2, 255]),
        array: ['a', 1, true, ['nested'], { k: 'v' }],
        table: { inner: { deeper: 'yes', n: 7 }, list: [] },
      };
      const expectedHeaders = {
        ...headers,
        int8: -5,
        uint8: 200,
        int16: -30000,
        uint16: 60000,
        int32: -2_000_000_000,
        uint32: 4_000_000_000,
        int64: 2 ** 40 + 3,
        negInt64: -(2 ** 40),
        float: 1.5,
      };
      const props = {
        contentType: 'application/json',
        contentEncoding: 'gzip',
        headers,
        deliveryMode: 2,
        priority: 7,
        correlationId: 'corr-1',
        replyTo: 'reply-queue',
        expiration: '86400000',
        messageId: 'msg-1',
        timestamp: 1_700_000_123,
        type: 'order.created',
        userId: connectionUser(),
        appId: 'conformance',
        clusterId: 'cluster-7',
      };
      // amqplib's publish() never sends clusterId, so this one goes out raw
      publishRaw(ch, { exchange: '', routingKey: q }, props, Buffer.from('{}'));
      const msg = await getOne(ch, q, { noAck: true });
      expect(msg.properties).toEqual({ ...props, headers: expectedHeaders });
      expect(msg.content.toString()).toBe('{}');
    });
  });

  it('absent properties stay absent', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      ch.sendToQueue(q, Buffer.from('bare'));
      const msg = await getOne(ch, q, { noAck: true });
      const { headers, ...rest } = msg.properties;
      for (const value of Object.values(rest)) expect(value).toBeUndefined();
      // amqplib always sends a headers table (possibly empty)
      expect(headers).toEqual({});
    });
  });

  it('back-to-back publishes on one channel keep their own properties, keys and bodies', async () => {
    // the broker reuses what repeats from one publish to the next; nothing may leak across
    await withChannel(async (ch) => {
      const q1 = await exclusiveQueue(ch);
      const q2 = await exclusiveQueue(ch);
      const sent = [
        { q: q1, body: 'a', props: { contentType: 'text/plain', messageId: 'm-0001', priority: 1 } },
        { q: q1, body: 'b', props: { contentType: 'text/plain', messageId: 'm-0001', priority: 1 } },
        { q: q1, body: 'c', props: { contentType: 'text/plain', messageId: 'm-0002', priority: 1 } },
        { q: q2, body: 'd', props: { contentType: 'text/plain', messageId: 'm-0002', priority: 2 } },
        { q: q1, body: 'e', props: { contentType: 'text/html', headers: { k: 'v' } } },
        { q: q2, body: 'f', props: { contentType: 'text/html', headers: { k: 'w' } } },
        { q: q1, body: 'g', props: {} },
      ];
      for (const m of sent) ch.sendToQueue(m.q, Buffer.from(m.body), m.props);
      for (const m of sent) {
        const msg = await getOne(ch, m.q, { noAck: true });
        expect(msg.content.toString()).toBe(m.body);
        expect(msg.fields.routingKey).toBe(m.q);
        expect(msg.properties).toMatchObject({ headers: {}, ...m.props });
        if (!('messageId' in m.props)) expect(msg.properties.messageId).toBeUndefined();
      }
    });
  });

  it('userId different from the authenticated user → channel error 406 PRECONDITION_FAILED', async () => {
    await withChannel(async (ch, conn) => {
      const q = await exclusiveQueue(ch);
      await expectChannelClose(
        ch,
        {
          code: 406,
          text: `PRECONDITION_FAILED - user_id property set to 'not-the-user' but authenticated user was '${connectionUser()}'`,
          method: [BASIC, BASIC_PUBLISH],
        },
        () => ch.sendToQueue(q, Buffer.from('x'), { userId: 'not-the-user' }),
      );
      const ch2 = await openChannel(conn);
      expect((await ch2.checkQueue(q)).messageCount).toBe(0);
    });
  });

  it('bodies of 0 bytes, around the frame size, and 1 MiB (multi-frame) arrive intact', async () => {
    await withChannel(async (ch, conn) => {
      const q = await exclusiveQueue(ch);
      const frameMax = (conn as unknown as { connection: { frameMax: number } }).connection.frameMax;
      // spec: a body frame carries at most frame_max - 8 octets (7 header + 1 frame-end)
      const chunk = frameMax - 8;
      const sizes = [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 1024 * 1024, 3 * 1024 * 1024 + 17];
      const bodies = sizes.map((n) => randomBytes(n));
      for (const b of bodies) ch.sendToQueue(q, b);
      for (const b of bodies) {
        const msg = await getOne(ch, q, { noAck: true });
        expect(msg.content.length).toBe(b.length);
        expect(msg.content.equals(b)).toBe(true);
      }
      // and via basic.deliver
      for (const b of bodies) ch.sendToQueue(q, b);
      const inbox = await consumeInto(ch, q, { noAck: true });
      const got = await inbox.untilCount(bodies.length);
      got.forEach((m, i) => expect(m!.content.equals(bodies[i]!)).toBe(true));
    });
  });
});

describe('basic.consume', () => {
  it('the server generates a consumer tag amq.ctag-… when none is given', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      const { consumerTag } = await ch.consume(q, () => {});
      expect(consumerTag).toMatch(/^amq\.ctag-.+/);
      const tagged = await ch.consume(q, () => {}, { consumerTag: 'my-tag' });
      expect(tagged.consumerTag).toBe('my-tag');
    });
  });

  it('delivers with consumerTag, deliveryTag, redelivered, exchange and routingKey', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      const inbox = await consumeInto(ch, q, { noAck: true });
      ch.sendToQueue(q, Buffer.from('x'));
      const msg = (await inbox.nth(1))!;
      expect(msg.fields).toEqual({ consumerTag: inbox.consumerTag, deliveryTag: 1, redelivered: false, exchange: '', routingKey: q });
    });
  });

  it('exclusive consumer → another consumer on the queue gets 403 ACCESS_REFUSED', async () => {
    await withChannel(async (ch, conn) => {
      const q = await sharedQueue();
      await ch.consume(q, () => {}, { exclusive: true });
      const ch2 = await openChannel(conn);
      await expectChannelClose(ch2, { code: 403, text: `ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use`, method: [BASIC, BASIC_CONSUME] }, () =>
        ch2.consume(q, () => {}),
      );
      // the first channel and the connection are fine
      await ch.checkQueue(q);
    });
  });

  it('exclusive consume on a queue that already has a consumer → 403 ACCESS_REFUSED', async () => {
    await withChannel(async (ch, conn) => {
      const q = await sharedQueue();
      await ch.consume(q, () => {});
      const ch2 = await openChannel(conn);
      await expectChannelClose(ch2, { code: 403, text: `ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use` }, () =>
        ch2.consume(q, () => {}, { exclusive: true }),
      );
    });
  });

  it("consume from another connection's exclusive queue → 405 RESOURCE_LOCKED", async () => {
    await withChannel(async (owner) => {
      const q = await exclusiveQueue(owner);
      await withChannel(async (ch, conn) => {
        await expectChannelClose(
          ch,
          {
            code: 405,
            text: new RegExp(`^RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '/'`),
            method: [BASIC, BASIC_CONSUME],
          },
          () => ch.consume(q, () => {}),
        );
        const ch2 = await openChannel(conn);
        await ch2.checkExchange('amq.direct');
      });
    });
  });

  it('once the exclusive consumer cancels, others may consume', async () => {
    await withChannel(async (ch, conn) => {
      const q = await sharedQueue();
      const { consumerTag } = await ch.consume(q, () => {}, { exclusive: true });
      await ch.cancel(consumerTag);
      const ch2 = await openChannel(conn);
      await ch2.consume(q, () => {});
    });
  });

  it('noLocal is ignored: a connection receives its own publishes', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      // RabbitMQ does not implement no-local
      const inbox = await consumeInto(ch, q, { noAck: true, noLocal: true });
      ch.sendToQueue(q, Buffer.from('mine'));
      expect(bodyOf(await inbox.nth(1))).toBe('mine');
    });
  });

  it('duplicate consumer tag on a channel → connection error 530 NOT_ALLOWED', async () => {
    await withChannel(async (ch, conn) => {
      const q = await exclusiveQueue(ch);
      await ch.consume(q, () => {}, { consumerTag: 'dup' });
      await expectConnectionClose(conn, { code: 530, text: "NOT_ALLOWED - attempt to reuse consumer tag 'dup'" }, () =>
        ch.consume(q, () => {}, { consumerTag: 'dup' }),
      );
    });
  });

  it('the same consumer tag on two channels is fine', async () => {
    await withChannel(async (ch, conn) => {
      const q = await exclusiveQueue(ch);
      await ch.consume(q, () => {}, { consumerTag: 'same' });
      const ch2 = await openChannel(conn);
      expect((await ch2.consume(q, () => {}, { consumerTag: 'same' })).consumerTag).toBe('same');
    });
  });

  it('consume on a missing queue → channel error 404 NOT_FOUND', async () => {
    await withChannel(async (ch, conn) => {
      const q = uniqueName('missing-q');
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no queue '${q}' in vhost '/'`, method: [BASIC, BASIC_CONSUME] }, () =>
        ch.consume(q, () => {}),
      );
      await (await openChannel(conn)).checkExchange('amq.direct');
    });
  });

  it('no-ack consumer: delivered messages are gone from the queue; acking one → 406 unknown delivery tag', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['a', 'b', 'c']);
      const inbox = await consumeInto(ch, q, { noAck: true });
      await inbox.untilCount(3);
      await ch.cancel(inbox.consumerTag);
      expect((await ch.checkQueue(q)).messageCount).toBe(0);
      expect(inbox.bodies()).toEqual(['a', 'b', 'c']);
      // a no-ack delivery is settled when sent, so its tag is unknown to basic.ack
      await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 1' }, () => ch.ack(inbox.received[0]!));
    });
  });
});

describe('basic.cancel', () => {
  it('stops deliveries; undelivered messages stay in the queue', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      const inbox = await consumeInto(ch, q, { noAck: true });
      ch.sendToQueue(q, Buffer.from('before'));
      await inbox.nth(1);
      const ok = await ch.cancel(inbox.consumerTag);
      expect(ok.consumerTag).toBe(inbox.consumerTag);
      ch.sendToQueue(q, Buffer.from('after'));
      expect(await drain(ch, q)).toEqual(['after']);
      expect(inbox.bodies()).toEqual(['before']);
    });
  });

  it('cancelling an unknown consumer tag is answered with cancel-ok', async () => {
    await withChannel(async (ch) => {
      // RabbitMQ: basic.cancel of a tag it does not know is not an error
      const ok = await ch.cancel('never-registered');
      expect(ok.consumerTag).toBe('never-registered');
      await ch.checkExchange('amq.direct');
    });
  });

  it('unacked deliveries of a cancelled consumer stay unacked and can still be acked', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      publishAll(ch, q, ['a', 'b']);
      const inbox = await consumeInto(ch, q, { noAck: false });
      await inbox.untilCount(2);
      await ch.cancel(inbox.consumerTag);
      ch.ack(inbox.received[0]!);
      // the ack was valid (the channel is still open); the other one is requeued on close
      expect(await settle(ch, q)).toBe(0);
      await ch.close();
      expect(await takeWhenReady(q, 1)).toEqual([['b', true]]);
    });
  });

  it('the server cancels consumers when their queue is deleted (amqplib: callback with null)', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      const inbox = await consumeInto(ch, q, { noAck: true });
      toDelete.splice(toDelete.indexOf(q), 1);
      await adminCh.deleteQueue(q);
      expect(await inbox.nth(1)).toBeNull();
      // the channel survives the cancel
      await ch.checkExchange('amq.direct');
    });
  });
});

describe('basic.qos', () => {
  it('prefetch 2 (per consumer): 2 of 5 delivered until an ack', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['1', '2', '3', '4', '5']);
      await ch.prefetch(2);
      const inbox = await consumeInto(ch, q, { noAck: false });
      await inbox.untilCount(2);
      expect(await settle(ch, q)).toBe(3);
      expect(inbox.bodies()).toEqual(['1', '2']);
      ch.ack(inbox.received[0]!);
      await inbox.untilCount(3);
      expect(await settle(ch, q)).toBe(2);
      expect(inbox.bodies()).toEqual(['1', '2', '3']);
      // a multiple ack frees two slots
      ch.ack(inbox.received[2]!, true);
      await inbox.untilCount(5);
      expect(await settle(ch, q)).toBe(0);
      expect(inbox.bodies()).toEqual(['1', '2', '3', '4', '5']);
    });
  });

  it('global=false: each consumer on the channel gets its own limit', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      await ch.prefetch(2, false);
      const a = await consumeInto(ch, q);
      const b = await consumeInto(ch, q);
      publishAll(ch, q, ['1', '2', '3', '4', '5', '6']);
      await a.untilCount(2);
      await b.untilCount(2);
      expect(await settle(ch, q)).toBe(2);
      expect(a.received.length + b.received.length).toBe(4);
    });
  });

  it('global=true: the limit is shared by all consumers on the channel', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      // RabbitMQ: global=true is a per-channel limit across consumers
      await ch.prefetch(3, true);
      const a = await consumeInto(ch, q);
      const b = await consumeInto(ch, q);
      publishAll(ch, q, ['1', '2', '3', '4', '5', '6']);
      await a.untilCount(2);
      await b.untilCount(1);
      expect(await settle(ch, q)).toBe(3);
      expect(a.received.length + b.received.length).toBe(3);
      ch.ack(a.received[0]!);
      // exactly one more goes out, to whichever consumer
      await new Promise<void>((resolve) => {
        const check = (): void => (a.received.length + b.received.length === 4 ? resolve() : undefined);
        void a.untilCount(3).then(check);
        void b.untilCount(2).then(check);
      });
      expect(await settle(ch, q)).toBe(2);
      expect(a.received.length + b.received.length).toBe(4);
    });
  });

  it('prefetch 0 means unlimited', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      await ch.prefetch(0);
      publishAll(ch, q, ['1', '2', '3', '4']);
      const inbox = await consumeInto(ch, q);
      await inbox.untilCount(4);
      expect(await settle(ch, q)).toBe(0);
    });
  });

  it('prefetch_size != 0 → connection error 540 NOT_IMPLEMENTED', async () => {
    await withChannel(async (ch, conn) => {
      await expectConnectionClose(conn, { code: 540, text: 'NOT_IMPLEMENTED - prefetch_size!=0 (10)' }, () => basicQos(ch, 10, 0, false));
    });
  });

  it('a new prefetch applies to consumers created after it, not to existing ones', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      const unlimited = await consumeInto(ch, q);
      await ch.prefetch(1);
      publishAll(ch, q, ['1', '2', '3']);
      await unlimited.untilCount(3);
      await ch.cancel(unlimited.consumerTag);
      ch.nackAll(true);
      const limited = await consumeInto(ch, q);
      await limited.untilCount(1);
      expect(await settle(ch, q)).toBe(2);
    });
  });

  it('basic.get ignores the prefetch limit', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      await ch.prefetch(1, true);
      publishAll(ch, q, ['1', '2', '3']);
      const got = [await getOne(ch, q), await getOne(ch, q), await getOne(ch, q)];
      expect(got.map(bodyOf)).toEqual(['1', '2', '3']);
    });
  });
});

describe('delivery', () => {
  it('round-robins over two consumers with credit', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      const a = await consumeInto(ch, q, { noAck: true });
      const b = await consumeInto(ch, q, { noAck: true });
      publishAll(ch, q, ['1', '2', '3', '4', '5', '6']);
      await a.untilCount(3);
      await b.untilCount(3);
      const [first, second] = a.bodies()[0] === '1' ? [a, b] : [b, a];
      expect(first.bodies()).toEqual(['1', '3', '5']);
      expect(second.bodies()).toEqual(['2', '4', '6']);
    });
  });

  it('delivery tags are per channel, start at 1 and increase across consume and get', async () => {
    await withChannel(async (ch, conn) => {
      const ch2 = await openChannel(conn);
      const q1 = await exclusiveQueue(ch);
      const q2 = await exclusiveQueue(ch);
      publishAll(ch, q1, ['a', 'b', 'c']);
      publishAll(ch, q2, ['x', 'y']);
      const inbox = await consumeInto(ch, q1);
      await inbox.untilCount(3);
      expect(inbox.received.map((m) => m!.fields.deliveryTag)).toEqual([1, 2, 3]);
      ch.sendToQueue(q1, Buffer.from('d'));
      await inbox.untilCount(4);
      expect(inbox.received[3]!.fields.deliveryTag).toBe(4);
      // a second channel has its own sequence
      expect((await getOne(ch2, q2)).fields.deliveryTag).toBe(1);
      expect((await getOne(ch2, q2)).fields.deliveryTag).toBe(2);
      // get shares the channel's sequence with consumers
      await ch.cancel(inbox.consumerTag);
      ch.sendToQueue(q2, Buffer.from('z'));
      expect((await getOne(ch, q2)).fields.deliveryTag).toBe(5);
    });
  });
});

describe('basic.ack', () => {
  it('multiple=true acks everything up to the tag', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      publishAll(ch, q, ['1', '2', '3', '4']);
      const got = [await getOne(ch, q), await getOne(ch, q), await getOne(ch, q), await getOne(ch, q)];
      ch.ack(got[2]!, true);
      await ch.close();
      // only message 4 was left unacked and comes back on close
      expect(await takeWhenReady(q, 1)).toEqual([['4', true]]);
    });
  });

  it('ackAll (tag 0, multiple) acks every outstanding delivery', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      publishAll(ch, q, ['1', '2', '3']);
      await getOne(ch, q);
      await getOne(ch, q);
      ch.ackAll();
      await ch.close();
      expect(await takeWhenReady(q, 1)).toEqual([['3', false]]);
    });
  });

  it('unknown delivery tag → channel error 406 PRECONDITION_FAILED', async () => {
    await withChannel(async (ch, conn) => {
      const err = await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 42', method: [BASIC, BASIC_ACK] }, () =>
        ch.ack({ fields: { deliveryTag: 42 } } as unknown as Message),
      );
      expect(err.message).toMatch(/^Channel closed by server: 406 \(PRECONDITION-FAILED\) with message "PRECONDITION_FAILED/);
      await (await openChannel(conn)).checkExchange('amq.direct');
    });
  });

  it('delivery tags belong to their channel: acking on another channel → 406', async () => {
    await withChannel(async (ch, conn) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['1']);
      const m = await getOne(ch, q);
      const other = await openChannel(conn);
      await expectChannelClose(other, { code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 1' }, () => other.ack(m));
      // the delivering channel can still ack it
      ch.ack(m);
      expect(await settle(ch, q)).toBe(0);
    });
  });

  it('delivery tag 0 without multiple → 406 unknown delivery tag 0', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['1']);
      await getOne(ch, q);
      await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 0' }, () =>
        ch.ack({ fields: { deliveryTag: 0 } } as unknown as Message, false),
      );
    });
  });

  it('acking the same delivery twice → 406 unknown delivery tag', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['1']);
      const m = await getOne(ch, q);
      await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 1' }, () => {
        ch.ack(m);
        ch.ack(m);
      });
    });
  });

  it('unacked messages are requeued (redelivered) when the channel closes', async () => {
    await withChannel(async (ch) => {
      const q = await sharedQueue();
      publishAll(ch, q, ['1', '2', '3']);
      const inbox = await consumeInto(ch, q, { noAck: false });
      await inbox.untilCount(3);
      ch.ack(inbox.received[1]!);
      await ch.close();
      expect(await takeWhenReady(q, 2)).toEqual([
        ['1', true],
        ['3', true],
      ]);
    });
  });

  it('unacked messages are requeued (redelivered) when the connection closes', async () => {
    const q = await sharedQueue();
    const conn = await connect();
    const ch = await openChannel(conn);
    publishAll(ch, q, ['1', '2']);
    await getOne(ch, q);
    await getOne(ch, q);
    await conn.close();
    expect(await takeWhenReady(q, 2)).toEqual([
      ['1', true],
      ['2', true],
    ]);
  });
});

/** Gets everything from q on the admin channel: [body, redelivered] pairs. */
describe('basic.nack / basic.reject', () => {
  it('nack requeue=true puts the message back in its original position, redelivered', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['m1', 'm2', 'm3']);
      const m1 = await getOne(ch, q);
      expect(m1.fields.redelivered).toBe(false);
      ch.nack(m1, false, true);
      const again = await getOne(ch, q, { noAck: true });
      expect(bodyOf(again)).toBe('m1');
      expect(again.fields.redelivered).toBe(true);
      const m2 = await getOne(ch, q, { noAck: true });
      expect([bodyOf(m2), m2.fields.redelivered]).toEqual(['m2', false]);
    });
  });

  it('reject requeue=true puts the message back in its original position, redelivered', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['m1', 'm2', 'm3']);
      const m1 = await getOne(ch, q);
      const m2 = await getOne(ch, q);
      ch.reject(m2, true);
      ch.reject(m1, true);
      const got = [await getOne(ch, q, { noAck: true }), await getOne(ch, q, { noAck: true }), await getOne(ch, q, { noAck: true })];
      expect(got.map((m) => [bodyOf(m), m.fields.redelivered])).toEqual([
        ['m1', true],
        ['m2', true],
        ['m3', false],
      ]);
    });
  });

  it('nack multiple requeue=true requeues everything up to the tag, in order', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['m1', 'm2', 'm3']);
      await getOne(ch, q);
      const m2 = await getOne(ch, q);
      ch.nack(m2, true, true);
      expect(await drain(ch, q)).toEqual(['m1', 'm2', 'm3']);
    });
  });

  it('requeued messages go to a consumer again with redelivered=true', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['m1']);
      const inbox = await consumeInto(ch, q, { noAck: false });
      const first = (await inbox.nth(1))!;
      ch.reject(first, true);
      const second = (await inbox.nth(2))!;
      expect([bodyOf(second), second.fields.redelivered, second.fields.deliveryTag]).toEqual(['m1', true, 2]);
      ch.ack(second);
    });
  });

  it('requeue=false drops the message', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['m1', 'm2', 'm3']);
      ch.nack(await getOne(ch, q), false, false);
      ch.reject(await getOne(ch, q), false);
      expect(await drain(ch, q)).toEqual(['m3']);
    });
  });

  it('nackAll requeues every outstanding delivery', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['m1', 'm2']);
      await getOne(ch, q);
      await getOne(ch, q);
      ch.nackAll(true);
      expect(await drain(ch, q)).toEqual(['m1', 'm2']);
    });
  });

  it.each([
    ['nack', BASIC_NACK],
    ['reject', BASIC_REJECT],
  ] as const)('%s of an unknown delivery tag → channel error 406', async (method, methodId) => {
    await withChannel(async (ch) => {
      const fake = { fields: { deliveryTag: 7 } } as unknown as Message;
      await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 7', method: [BASIC, methodId] }, () =>
        method === 'nack' ? ch.nack(fake, false, true) : ch.reject(fake, true),
      );
    });
  });
});

describe('basic.get', () => {
  it('get-ok carries messageCount (messages left), exchange, routingKey and deliveryTag', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      ch.publish('', q, Buffer.from('a'));
      ch.publish('', q, Buffer.from('b'));
      const m = await getOne(ch, q);
      expect(m.fields).toEqual({ deliveryTag: 1, redelivered: false, exchange: '', routingKey: q, messageCount: 1 });
      const m2 = await getOne(ch, q, { noAck: true });
      expect(m2.fields.messageCount).toBe(0);
      // unacked messages are not counted as ready
      expect((await ch.checkQueue(q)).messageCount).toBe(0);
    });
  });

  it('get-empty on an empty queue (amqplib resolves false)', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      expect(await ch.get(q)).toBe(false);
    });
  });

  it('get on a missing queue → channel error 404 NOT_FOUND', async () => {
    await withChannel(async (ch, conn) => {
      const q = uniqueName('missing-q');
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no queue '${q}' in vhost '/'`, method: [BASIC, BASIC_GET] }, () => ch.get(q));
      await (await openChannel(conn)).checkExchange('amq.direct');
    });
  });
});

describe('basic.recover', () => {
  it('requeue=true redelivers unacked messages with redelivered=true', async () => {
    await withChannel(async (ch) => {
      const q = await exclusiveQueue(ch);
      publishAll(ch, q, ['1', '2']);
      const inbox = await consumeInto(ch, q, { noAck: false });
      await inbox.untilCount(2);
      await ch.recover();
      const again = (await inbox.untilCount(4)).slice(2) as ConsumeMessage[];
      expect(again.map((m) => [bodyOf(m), m.fields.redelivered])).toEqual([
        ['1', true],
        ['2', true],
      ]);
      // the old tags are void; the new ones are valid
      ch.ack(again[1]!, true);
      expect(await settle(ch, q)).toBe(0);
    });
  });

  it('requeue=false → connection error 540 NOT_IMPLEMENTED', async () => {
    await withChannel(async (ch, conn) => {
      await expectConnectionClose(conn, { code: 540, text: 'NOT_IMPLEMENTED - requeue=false' }, () => basicRecover(ch, false));
    });
  });
});
