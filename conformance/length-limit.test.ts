import type { Message } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, consumeInto, drain, getOne, openConfirmChannel, publishConfirmed, Scope, settle, sink, xDeath } from './support/index.js';

// RabbitMQ extension: queue length limits (x-max-length, x-max-length-bytes) and overflow behaviour (x-overflow).

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

describe('queue.declare length-limit arguments', () => {
  it.each([
    ['x-max-length', -1, '{value_negative,-1}'],
    ['x-max-length', '1', '"expected integer, got longstr"'],
    ['x-max-length-bytes', -1, '{value_negative,-1}'],
    ['x-max-length-bytes', '1', '"expected integer, got longstr"'],
    ['x-overflow', 'foo', 'invalid_overflow'],
    ['x-overflow', 1, '{unacceptable_type,byte}'],
  ])('%s %j → channel error 406 PRECONDITION_FAILED', async (arg, value, detail) => {
    await scope.expectInvalidArg(arg, value, detail);
  });

  it.each(['drop-head', 'reject-publish', 'reject-publish-dlx'])('x-overflow %s is accepted', async (overflow) => {
    await scope.queue('len', { 'x-max-length': 1, 'x-overflow': overflow });
  });
});

describe('x-overflow drop-head (the default)', () => {
  it('x-max-length: the oldest messages are dropped and dead-lettered with reason "maxlen"; publishes are acked', async () => {
    const conn = await scope.connection();
    const ch = await openConfirmChannel(conn);
    const dead = await sink(ch);
    const q = await scope.queue('len', { 'x-max-length': 2, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead.queue });
    const verdicts = await Promise.all(['a', 'b', 'c'].map((b) => publishConfirmed(ch, '', q, b)));
    expect(verdicts).toEqual(['ack', 'ack', 'ack']);
    const m = await dead.inbox.nth(1);
    expect(bodyOf(m)).toBe('a');
    expect(xDeath(m)).toEqual([
      {
        count: 1,
        reason: 'maxlen',
        queue: q,
        time: { '!': 'timestamp', value: expect.any(Number) },
        exchange: '',
        'routing-keys': [q],
      },
    ]);
    expect(m!.properties.headers).toMatchObject({ 'x-first-death-reason': 'maxlen', 'x-first-death-queue': q, 'x-first-death-exchange': '' });
    expect(await drain(ch, q)).toEqual(['b', 'c']);
  });

  it('x-max-length-bytes counts body bytes: the head is dropped until the rest fits', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('len', { 'x-max-length-bytes': 10 });
    for (const b of ['aaaa', 'bbbb', 'cccc', 'dd']) ch.sendToQueue(q, Buffer.from(b), { headers: { padding: 'x'.repeat(100) } });
    await ch.waitForConfirms();
    expect(await drain(ch, q)).toEqual(['bbbb', 'cccc', 'dd']);
    // a message larger than the limit on its own does not stay either
    ch.sendToQueue(q, Buffer.from('0123456789A'));
    await ch.waitForConfirms();
    expect((await ch.checkQueue(q)).messageCount).toBe(0);
  });

  it('x-max-length 0: dropped without a waiting consumer, delivered to a waiting one', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('len0', { 'x-max-length': 0 });
    expect(await publishConfirmed(ch, '', q, 'nobody')).toBe('ack');
    expect((await ch.checkQueue(q)).messageCount).toBe(0);
    const inbox = await consumeInto(ch, q, { noAck: true });
    expect(await publishConfirmed(ch, '', q, 'someone')).toBe('ack');
    expect(bodyOf(await inbox.nth(1))).toBe('someone');
  });

  it('only ready messages count: unacked ones do not; a requeue over the limit drops the head (the requeued one)', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('len', { 'x-max-length': 1 });
    await publishConfirmed(ch, '', q, 'first');
    const first = await getOne(ch, q);
    await publishConfirmed(ch, '', q, 'second');
    expect((await ch.checkQueue(q)).messageCount).toBe(1);
    ch.nack(first, false, true);
    // RabbitMQ: the requeued message goes back to the head and the limit is enforced again
    expect(await settle(ch, q)).toBe(1);
    expect(await drain(ch, q)).toEqual(['second']);
  });
});

describe('x-overflow reject-publish', () => {
  it('publishes beyond the limit are nacked and not enqueued nor dead-lettered', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const dead = await sink(ch);
    const q = await scope.queue('len', {
      'x-max-length': 2,
      'x-overflow': 'reject-publish',
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': dead.queue,
    });
    const verdicts = await Promise.all(['a', 'b', 'c'].map((b) => publishConfirmed(ch, '', q, b)));
    expect(verdicts).toEqual(['ack', 'ack', 'nack']);
    expect(await drain(ch, q)).toEqual(['a', 'b']);
    await settle(ch, dead.queue);
    expect(dead.inbox.received).toEqual([]);
    // room again: accepted
    expect(await publishConfirmed(ch, '', q, 'd')).toBe('ack');
  });

  it('only ready messages count; a requeue is never rejected, so the queue may exceed the limit', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('len', { 'x-max-length': 1, 'x-overflow': 'reject-publish' });
    await publishConfirmed(ch, '', q, 'first');
    const first = await getOne(ch, q);
    expect(await publishConfirmed(ch, '', q, 'second')).toBe('ack');
    expect(await publishConfirmed(ch, '', q, 'third')).toBe('nack');
    ch.nack(first, false, true);
    expect(await settle(ch, q)).toBe(2);
    expect(await drain(ch, q)).toEqual(['first', 'second']);
  });

  it('x-max-length-bytes with reject-publish nacks the message that would not fit', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('len', { 'x-max-length-bytes': 10, 'x-overflow': 'reject-publish' });
    expect(await publishConfirmed(ch, '', q, 'aaaaaaaa')).toBe('ack');
    expect(await publishConfirmed(ch, '', q, 'bb')).toBe('ack');
    expect(await publishConfirmed(ch, '', q, 'c')).toBe('nack');
    expect(await drain(ch, q)).toEqual(['aaaaaaaa', 'bb']);
  });

  it('mandatory: a rejected publish is nacked, not returned', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('len', { 'x-max-length': 1, 'x-overflow': 'reject-publish' });
    await publishConfirmed(ch, '', q, 'fill');
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    expect(await publishConfirmed(ch, '', q, 'over', { mandatory: true })).toBe('nack');
    // a basic.return would precede the nack on the wire
    expect(returned).toEqual([]);
  });

  it('x-max-length 0: nacked even when a consumer is waiting', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('len0', { 'x-max-length': 0, 'x-overflow': 'reject-publish' });
    const inbox = await consumeInto(ch, q, { noAck: true });
    expect(await publishConfirmed(ch, '', q, 'x')).toBe('nack');
    await settle(ch, q);
    expect(inbox.received).toEqual([]);
  });

  it('routed to a full queue and another one: the other gets it, the publisher gets a nack', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const fan = await scope.exchange('len-fan', 'fanout');
    const full = await scope.queue('len-full', { 'x-max-length': 1, 'x-overflow': 'reject-publish' });
    const open = await scope.queue('len-open');
    await ch.bindQueue(full, fan, '');
    await ch.bindQueue(open, fan, '');
    expect(await publishConfirmed(ch, fan, '', 'one')).toBe('ack');
    expect(await publishConfirmed(ch, fan, '', 'two')).toBe('nack');
    expect(await drain(ch, full)).toEqual(['one']);
    expect(await drain(ch, open)).toEqual(['one', 'two']);
  });

  it('without confirms a rejected publish is dropped silently; the channel stays open', async () => {
    const ch = await scope.channel();
    const q = await scope.queue('len', { 'x-max-length': 1, 'x-overflow': 'reject-publish' });
    ch.sendToQueue(q, Buffer.from('a'));
    ch.sendToQueue(q, Buffer.from('b'));
    expect(await settle(ch, q)).toBe(1);
    expect(await drain(ch, q)).toEqual(['a']);
  });
});

describe('x-overflow reject-publish-dlx', () => {
  it('publishes beyond the limit are nacked AND dead-lettered with reason "maxlen"', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const dead = await sink(ch);
    const q = await scope.queue('len', {
      'x-max-length': 2,
      'x-overflow': 'reject-publish-dlx',
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': dead.queue,
    });
    const verdicts = await Promise.all(['a', 'b', 'c'].map((b) => publishConfirmed(ch, '', q, b)));
    expect(verdicts).toEqual(['ack', 'ack', 'nack']);
    const m = await dead.inbox.nth(1);
    expect(bodyOf(m)).toBe('c');
    expect(xDeath(m)).toEqual([
      {
        count: 1,
        reason: 'maxlen',
        queue: q,
        time: { '!': 'timestamp', value: expect.any(Number) },
        exchange: '',
        'routing-keys': [q],
      },
    ]);
    expect(await drain(ch, q)).toEqual(['a', 'b']);
  });
});
