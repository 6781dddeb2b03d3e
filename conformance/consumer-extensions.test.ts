import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, channelNumber, consumeInto, expectChannelClose, isWarren, openChannel, Scope, settle } from './support/index.js';

// RabbitMQ extensions on the consumer side: single active consumer, basic.recover with it, consumer timeout.

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

const SAC = { 'x-single-active-consumer': true };

describe('queue.declare x-single-active-consumer', () => {
  it.each([
    [1, '{unacceptable_type,byte}'],
    ['true', '{unacceptable_type,longstr}'],
  ])('x-single-active-consumer %j → channel error 406 PRECONDITION_FAILED', async (value, detail) => {
    await scope.expectInvalidArg('x-single-active-consumer', value, detail);
  });
});

describe('basic.consume on a single-active-consumer queue', () => {
  it('only the first consumer gets messages; the next one takes over when it cancels', async () => {
    const q = await scope.queue('sac', SAC);
    const conn = await scope.connection();
    const ch1 = await openChannel(conn);
    const ch2 = await openChannel(conn);
    const first = await consumeInto(ch1, q, { noAck: true });
    const second = await consumeInto(ch2, q, { noAck: true });
    for (let i = 0; i < 6; i++) ch1.sendToQueue(q, Buffer.from(`m${i}`));
    await first.untilCount(6);
    await settle(ch2, q);
    expect(first.bodies()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    expect(second.received).toEqual([]);

    await ch1.cancel(first.consumerTag);
    for (let i = 6; i < 9; i++) ch1.sendToQueue(q, Buffer.from(`m${i}`));
    await second.untilCount(3);
    expect(second.bodies()).toEqual(['m6', 'm7', 'm8']);
    expect(first.received).toHaveLength(6);
  });

  it('messages waiting in the queue go to the consumer that takes over', async () => {
    const q = await scope.queue('sac', SAC);
    const conn = await scope.connection();
    const ch1 = await openChannel(conn);
    await ch1.prefetch(1);
    const ch2 = await openChannel(conn);
    const first = await consumeInto(ch1, q, { noAck: false });
    const second = await consumeInto(ch2, q, { noAck: true });
    for (let i = 0; i < 4; i++) ch2.sendToQueue(q, Buffer.from(`m${i}`));
    await first.untilCount(1);
    // the active consumer is blocked by its prefetch, yet the other one gets nothing
    expect(await settle(ch2, q)).toBe(3);
    expect(second.received).toEqual([]);

    // its channel closes: the unacked message is requeued and everything goes to the next consumer
    await ch1.close();
    await second.untilCount(4);
    expect(second.bodies()).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(second.received.map((m) => m!.fields.redelivered)).toEqual([true, false, false, false]);
  });

  it('without the argument (or false) consumers share the queue round-robin', async () => {
    const q = await scope.queue('sac-off', { 'x-single-active-consumer': false });
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    const a = await consumeInto(ch, q, { noAck: true });
    const b = await consumeInto(ch, q, { noAck: true });
    for (let i = 0; i < 4; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await a.untilCount(2);
    await b.untilCount(2);
    expect(a.bodies()).toEqual(['m0', 'm2']);
    expect(b.bodies()).toEqual(['m1', 'm3']);
  });
});

describe('basic.recover', () => {
  it('on a single-active-consumer queue the active consumer gets its unacked messages again, redelivered', async () => {
    const q = await scope.queue('sac', SAC);
    const conn = await scope.connection();
    const ch1 = await openChannel(conn);
    const ch2 = await openChannel(conn);
    const active = await consumeInto(ch1, q, { noAck: false });
    const standby = await consumeInto(ch2, q, { noAck: false });
    ch1.sendToQueue(q, Buffer.from('a'));
    ch1.sendToQueue(q, Buffer.from('b'));
    await active.untilCount(2);
    await ch1.recover();
    await active.untilCount(4);
    expect(active.bodies()).toEqual(['a', 'b', 'a', 'b']);
    expect(active.received.map((m) => m!.fields.redelivered)).toEqual([false, false, true, true]);
    // fresh delivery tags for the redeliveries
    expect(active.received.map((m) => m!.fields.deliveryTag)).toEqual([1, 2, 3, 4]);
    ch1.ackAll();
    await settle(ch2, q);
    expect(standby.received).toEqual([]);
  });
});

describe('consumer timeout', () => {
  it.skipIf(!isWarren())('x-consumer-timeout: an unacked delivery older than the limit closes the channel with 406 (Warren extension)', async () => {
    const q = await scope.queue('ctimeout', { 'x-consumer-timeout': 1000 });
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    const inbox = await consumeInto(ch, q, { noAck: false });
    const closed = expectChannelClose(ch, {
      code: 406,
      text:
        `PRECONDITION_FAILED - delivery acknowledgement on channel ${channelNumber(ch)} timed out. Timeout value used: 1000 ms. ` +
        'This timeout value can be configured, see consumers doc guide to learn more',
    });
    ch.sendToQueue(q, Buffer.from('never acked'));
    expect(bodyOf(await inbox.nth(1))).toBe('never acked');
    await closed;
    // the message is requeued for others; the connection is fine
    const other = await openChannel(conn);
    const again = await consumeInto(other, q, { noAck: true });
    const m = await again.nth(1);
    expect(bodyOf(m)).toBe('never acked');
    expect(m!.fields.redelivered).toBe(true);
  });

  it.skipIf(!isWarren())('x-consumer-timeout: deliveries acked in time keep the channel open (Warren extension)', async () => {
    const q = await scope.queue('ctimeout', { 'x-consumer-timeout': 1000 });
    const ch = await scope.channel();
    const inbox = await consumeInto(ch, q, { noAck: false });
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await inbox.untilCount(3);
    ch.ackAll();
    // a channel closed by a timeout would reject this
    await ch.checkQueue(q);
  });
});
