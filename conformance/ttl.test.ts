import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  bodyOf,
  brokerClock,
  consumeInto,
  getOne,
  openChannel,
  openConfirmChannel,
  replyText,
  Scope,
  settle,
  sink,
  uniqueName,
  xDeath,
} from './support/index.js';

// RabbitMQ extensions: per-queue message TTL (x-message-ttl), per-message TTL (expiration), queue expiry (x-expires).

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

describe('queue.declare x-message-ttl', () => {
  it.each([
    [-1, '{value_negative,-1}'],
    ['100', '"expected integer, got longstr"'],
    [1.5, '"expected integer, got double"'],
  ])('x-message-ttl %j → channel error 406 PRECONDITION_FAILED', async (value, detail) => {
    await scope.expectInvalidArg('x-message-ttl', value, detail);
  });

  it('an expired message at the head of a queue without consumers is removed (dead-lettered as "expired")', async () => {
    const ch = await scope.channel();
    const dead = await sink(ch);
    const q = await scope.queue('ttl', { 'x-message-ttl': 50, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead.queue });
    ch.sendToQueue(q, Buffer.from('short-lived'));
    const m = await dead.inbox.nth(1);
    expect(bodyOf(m)).toBe('short-lived');
    expect(xDeath(m)[0]).toMatchObject({ reason: 'expired', queue: q, count: 1 });
    // a queue TTL is not a per-message expiration: none is recorded
    expect(xDeath(m)[0]).not.toHaveProperty('original-expiration');
    expect(await ch.get(q)).toBe(false);
  });

  it('x-message-ttl 0: dropped when no consumer is waiting, delivered when one is', async () => {
    const conn = await scope.connection();
    const ch = await openConfirmChannel(conn);
    const q = await scope.queue('ttl0', { 'x-message-ttl': 0 });
    ch.sendToQueue(q, Buffer.from('nobody'));
    await ch.waitForConfirms();
    expect((await ch.checkQueue(q)).messageCount).toBe(0);

    const inbox = await consumeInto(ch, q, { noAck: true });
    ch.sendToQueue(q, Buffer.from('someone'));
    expect(bodyOf(await inbox.nth(1))).toBe('someone');
  });
});

describe('basic.publish expiration', () => {
  it('the lower of queue TTL and message expiration applies', async () => {
    const ch = await scope.channel();
    const dead = await sink(ch);
    // queue TTL 40 ms is lower than 5 s: every message is gone after ~40 ms
    const q = await scope.queue('ttl', { 'x-message-ttl': 40, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead.queue });
    const started = Date.now();
    ch.sendToQueue(q, Buffer.from('exp5000'), { expiration: '5000' });
    ch.sendToQueue(q, Buffer.from('exp10'), { expiration: '10' });
    ch.sendToQueue(q, Buffer.from('none'));
    await dead.inbox.untilCount(3);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(dead.inbox.bodies()).toEqual(['exp5000', 'exp10', 'none']);
    // RabbitMQ: the expiration property is removed when dead-lettering and kept as 'original-expiration'
    expect(dead.inbox.received.map((m) => m!.properties.expiration)).toEqual([undefined, undefined, undefined]);
    expect(dead.inbox.received.map((m) => xDeath(m)[0]!['original-expiration'])).toEqual(['5000', '10', undefined]);

    // message expiration 30 ms is lower than a queue TTL of 60 s
    const q2 = await scope.queue('ttl', { 'x-message-ttl': 60000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead.queue });
    ch.sendToQueue(q2, Buffer.from('exp30'), { expiration: '30' });
    const m = await dead.inbox.nth(4);
    expect(bodyOf(m)).toBe('exp30');
    expect(xDeath(m)[0]).toMatchObject({ reason: 'expired', queue: q2, 'original-expiration': '30' });
  });

  it('an expired message behind a live head is never delivered', async () => {
    const ch = await scope.channel();
    const q = await scope.queue('ttl');
    ch.sendToQueue(q, Buffer.from('keep'));
    ch.sendToQueue(q, Buffer.from('short'), { expiration: '10' });
    ch.sendToQueue(q, Buffer.from('keep2'));
    // the broker has let 60 ms pass (observed as another queue's TTL firing)
    await brokerClock(ch, 60);
    const inbox = await consumeInto(ch, q, { noAck: true });
    await inbox.untilCount(2);
    await settle(ch, q);
    expect(inbox.bodies()).toEqual(['keep', 'keep2']);
  });

  it('an expired message is not returned by basic.get', async () => {
    const ch = await scope.channel();
    const q = await scope.queue('ttl');
    ch.sendToQueue(q, Buffer.from('short'), { expiration: '10' });
    ch.sendToQueue(q, Buffer.from('keep'));
    await brokerClock(ch, 60);
    expect(bodyOf(await getOne(ch, q, { noAck: true }))).toBe('keep');
    expect(await ch.get(q)).toBe(false);
  });

  it('expiration "0": dropped when no consumer is waiting, delivered (property kept) when one is', async () => {
    const conn = await scope.connection();
    const ch = await openConfirmChannel(conn);
    const q = await scope.queue('exp0');
    ch.sendToQueue(q, Buffer.from('nobody'), { expiration: '0' });
    await ch.waitForConfirms();
    expect((await ch.checkQueue(q)).messageCount).toBe(0);

    const inbox = await consumeInto(ch, q, { noAck: true });
    ch.sendToQueue(q, Buffer.from('someone'), { expiration: '0' });
    const m = await inbox.nth(1);
    expect(bodyOf(m)).toBe('someone');
    expect(m!.properties.expiration).toBe('0');
  });

  it('a message that expires while another one is being consumed is skipped', async () => {
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    const q = await scope.queue('ttl');
    await ch.prefetch(1);
    ch.sendToQueue(q, Buffer.from('first'));
    ch.sendToQueue(q, Buffer.from('short'), { expiration: '20' });
    ch.sendToQueue(q, Buffer.from('last'));
    const inbox = await consumeInto(ch, q, { noAck: false });
    const first = await inbox.nth(1);
    expect(bodyOf(first)).toBe('first');
    await brokerClock(ch, 80);
    ch.ack(first!);
    const next = await inbox.nth(2);
    expect(bodyOf(next)).toBe('last');
    ch.ack(next!);
    await settle(ch, q);
    expect(inbox.received).toHaveLength(2);
  });
});

describe('queue.declare x-expires', () => {
  it.each([
    [0, '{value_zero,0}'],
    [-1, '{value_negative,-1}'],
    ['100', '"expected integer, got longstr"'],
  ])('x-expires %j → channel error 406 PRECONDITION_FAILED', async (value, detail) => {
    await scope.expectInvalidArg('x-expires', value, detail);
  });

  it('an unused queue is deleted after the period (passive declare then answers 404)', async () => {
    const conn = await scope.connection();
    const name = uniqueName('expires');
    const setup = await openChannel(conn);
    await setup.assertQueue(name, { durable: false, arguments: { 'x-expires': 100 } });
    // the queue still exists right after the declare
    await setup.checkQueue(name);
    let gone: { code?: number; message: string } | null = null;
    // bounded poll, probes spaced wider than the period: RabbitMQ restarts the expiry timer on
    // every queue.declare, passive ones included (its 'stat' call re-arms the timer)
    for (let i = 0; i < 20 && gone === null; i++) {
      await brokerClock(setup, 150);
      const probe = await openChannel(conn);
      try {
        await probe.checkQueue(name);
        await probe.close();
      } catch (e) {
        gone = e as { code?: number; message: string };
      }
    }
    if (gone === null) scope.trackQueue(name);
    expect(gone).not.toBeNull();
    expect(gone!.code).toBe(404);
    expect(replyText(gone!)).toBe(`NOT_FOUND - no queue '${name}' in vhost '/'`);
  });

  it('a queue with a consumer is not deleted; after the consumer cancels it is', async () => {
    const conn = await scope.connection();
    const name = uniqueName('expires');
    const ch = await openChannel(conn);
    await ch.assertQueue(name, { durable: false, arguments: { 'x-expires': 100 } });
    scope.trackQueue(name);
    const inbox = await consumeInto(ch, name, { noAck: true });
    await brokerClock(ch, 300);
    // still there, and still delivering
    ch.sendToQueue(name, Buffer.from('alive'));
    expect(bodyOf(await inbox.nth(1))).toBe('alive');
    await ch.cancel(inbox.consumerTag);

    let gone = false;
    for (let i = 0; i < 20 && !gone; i++) {
      await brokerClock(ch, 150);
      const probe = await openChannel(conn);
      gone = await probe.checkQueue(name).then(
        () => probe.close().then(() => false),
        () => true,
      );
    }
    expect(gone).toBe(true);
    // already deleted by the broker: declare it again so the cleanup's delete succeeds either way
    await ch.assertQueue(name, { durable: false });
  });
});
