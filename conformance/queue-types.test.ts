import type { ConsumeMessage } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Scope,
  bodyOf,
  consumeInto,
  expectChannelClose,
  expectConnectionClose,
  getOne,
  isWarren,
  openChannel,
  openConfirmChannel,
  publishConfirmed,
  sink,
  uniqueName,
  xDeath,
} from './support/index.js';

// x-queue-type as RabbitMQ 3.10 validates it, and the quorum-queue semantics one node can honour:
// x-delivery-limit with the x-delivery-count header, dead-lettering as delivery_limit. Every
// case passes against RabbitMQ 3.10 except the stream refusal (Warren has no streams yet).

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

const QUEUE_DECLARE = [50, 10] as const;
const BASIC_CONSUME = [60, 20] as const;

/** A durable quorum queue, deleted after the test. */
async function quorumQueue(args: Record<string, unknown> = {}): Promise<string> {
  const name = uniqueName('qq');
  scope.trackQueue(name);
  await (await scope.admin()).assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum', ...args } });
  return name;
}

const ofType = (arg: string, q: string, type: string): string =>
  `PRECONDITION_FAILED - invalid arg '${arg}' for queue '${q}' in vhost '/' of queue type ${type}`;
const invalidArg = (arg: string, q: string, detail: string): string => `PRECONDITION_FAILED - invalid arg '${arg}' for queue '${q}' in vhost '/': ${detail}`;

describe('x-queue-type validation', () => {
  it.each([
    ['bogus', `"unsupported queue type 'bogus'"`],
    ['QUORUM', `"unsupported queue type 'QUORUM'"`],
    ['', `"unsupported queue type ''"`],
    [5, '{unacceptable_type,byte}'],
  ])('x-queue-type %j → 406', async (type, detail) => {
    await scope.expectDeclareRefused({ 'x-queue-type': type }, (q) => invalidArg('x-queue-type', q, detail), { durable: true });
  });

  it('classic is the default: declaring with x-queue-type classic, and again without it, is equivalent', async () => {
    const ch = await scope.admin();
    const q = uniqueName('classic');
    scope.trackQueue(q);
    await ch.assertQueue(q, { durable: false, arguments: { 'x-queue-type': 'classic' } });
    await ch.assertQueue(q, { durable: false });
    await ch.assertQueue(q, { durable: false, arguments: { 'x-queue-type': 'classic' } });
  });

  it.each([
    ['non-durable', { durable: false }],
    ['exclusive-owner', { durable: true, exclusive: true }],
    ['auto-delete', { durable: true, autoDelete: true }],
    ['auto-delete', { durable: false, exclusive: true, autoDelete: true }],
  ])('quorum: property %s → 406 invalid property (%j)', async (property, options) => {
    await scope.expectDeclareRefused(
      { 'x-queue-type': 'quorum' },
      (q) => `PRECONDITION_FAILED - invalid property '${property}' for queue '${q}' in vhost '/'`,
      options,
    );
  });

  it('quorum: a server-named queue → 406 (checked before anything else)', async () => {
    const ch = await scope.channel();
    await expectChannelClose(
      ch,
      { code: 406, text: 'PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue', method: QUEUE_DECLARE },
      () => ch.assertQueue('', { durable: false, exclusive: true, arguments: { 'x-queue-type': 'quorum', 'x-max-priority': 5 } }),
    );
  });

  it.each([
    ['x-max-priority', 5],
    ['x-queue-mode', 'lazy'],
    ['x-queue-version', 2],
    ['x-queue-master-locator', 'min-masters'],
    ['x-max-age', '1D'],
  ])('quorum: classic or stream argument %s → 406 "of queue type rabbit_quorum_queue"', async (arg, value) => {
    await scope.expectDeclareRefused({ 'x-queue-type': 'quorum', [arg]: value }, (q) => ofType(arg, q, 'rabbit_quorum_queue'), { durable: true });
  });

  it('quorum: argument checks come before property checks', async () => {
    await scope.expectDeclareRefused({ 'x-queue-type': 'quorum', 'x-max-priority': 2 }, (q) => ofType('x-max-priority', q, 'rabbit_quorum_queue'), {
      durable: false,
      exclusive: true,
    });
  });

  it.each([
    ['x-delivery-limit', 3],
    ['x-dead-letter-strategy', 'at-most-once'],
    ['x-max-in-memory-length', 3],
    ['x-max-in-memory-bytes', 3],
    ['x-quorum-initial-group-size', 3],
    ['x-queue-leader-locator', 'client-local'],
    ['x-max-age', '1D'],
    ['x-stream-max-segment-size-bytes', 5],
    ['x-initial-cluster-size', 3],
  ])('classic: quorum or stream argument %s → 406 "of queue type rabbit_classic_queue"', async (arg, value) => {
    await scope.expectDeclareRefused({ [arg]: value }, (q) => ofType(arg, q, 'rabbit_classic_queue'));
  });

  it.each([
    [{ 'x-max-length': -1 }, 'x-max-length', '{value_negative,-1}'],
    [{ 'x-max-in-memory-length': -1 }, 'x-max-in-memory-length', '{value_negative,-1}'],
    [{ 'x-quorum-initial-group-size': 0 }, 'x-quorum-initial-group-size', '{value_zero,0}'],
    [{ 'x-dead-letter-strategy': 'bogus' }, 'x-dead-letter-strategy', 'invalid_dlx_strategy'],
    [{ 'x-queue-leader-locator': 'nearest' }, 'x-queue-leader-locator', 'invalid_queue_locator_arg'],
  ])('quorum: %j → 406 invalid arg', async (args, arg, detail) => {
    await scope.expectDeclareRefused({ 'x-queue-type': 'quorum', ...args }, (q) => invalidArg(arg, q, detail), { durable: true });
  });

  it.each([
    [{ 'x-queue-mode': 'bogus' }, 'x-queue-mode', `"unsupported queue mode 'bogus'"`],
    [{ 'x-queue-version': 3 }, 'x-queue-version', `"unsupported queue version '3'"`],
  ])('classic: %j → 406 invalid arg', async (args, arg, detail) => {
    await scope.expectDeclareRefused(args, (q) => invalidArg(arg, q, detail));
  });

  it('quorum: every argument quorum queues take is accepted (x-delivery-limit of any type, as RabbitMQ)', async () => {
    await quorumQueue({
      'x-max-length': 10,
      'x-max-length-bytes': 1000,
      'x-message-ttl': 1000,
      'x-expires': 100000,
      'x-single-active-consumer': true,
      'x-delivery-limit': 3,
      'x-overflow': 'reject-publish',
      'x-dead-letter-exchange': 'amq.direct',
      'x-dead-letter-routing-key': 'k',
      'x-dead-letter-strategy': 'at-least-once',
      'x-max-in-memory-length': 5,
      'x-max-in-memory-bytes': 5000,
      'x-quorum-initial-group-size': 3,
      'x-queue-leader-locator': 'balanced',
    });
    await quorumQueue({ 'x-delivery-limit': '3' });
    await quorumQueue({ 'x-delivery-limit': -1 });
  });

  it('redeclare: the type must match (inequivalent x-queue-type), and so must quorum arguments', async () => {
    const classic = uniqueName('classic');
    scope.trackQueue(classic);
    await (await scope.admin()).assertQueue(classic, { durable: true });
    let ch = await scope.channel();
    await expectChannelClose(
      ch,
      {
        code: 406,
        text: `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${classic}' in vhost '/': received the value 'quorum' of type 'longstr' but current is none`,
      },
      () => ch.assertQueue(classic, { durable: true, arguments: { 'x-queue-type': 'quorum' } }),
    );
    const q = await quorumQueue({ 'x-delivery-limit': 2 });
    ch = await scope.channel();
    await expectChannelClose(
      ch,
      {
        code: 406,
        text: `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received none but current is the value 'quorum' of type 'longstr'`,
      },
      () => ch.assertQueue(q, { durable: true }),
    );
    ch = await scope.channel();
    await expectChannelClose(
      ch,
      { code: 406, text: `PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue '${q}' in vhost '/': received '3' but current is '2'` },
      () => ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 3 } }),
    );
  });

  it('redeclare of an existing queue compares arguments, it does not validate them', async () => {
    const q = await scope.queue('classic');
    const ch = await scope.channel();
    await expectChannelClose(
      ch,
      {
        code: 406,
        text: `PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '${q}' in vhost '/': received the value '-1' of type 'byte' but current is none`,
      },
      () => ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': -1 } }),
    );
    // an argument classic queues do not take is neither validated nor compared on a redeclare
    await (await scope.channel()).assertQueue(q, { durable: false, arguments: { 'x-delivery-limit': 3 } });
  });

  it('stream: a server-named stream queue → 406, as RabbitMQ', async () => {
    const ch = await scope.channel();
    await expectChannelClose(
      ch,
      { code: 406, text: 'PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_stream_queue', method: QUEUE_DECLARE },
      () => ch.assertQueue('', { durable: true, arguments: { 'x-queue-type': 'stream' } }),
    );
  });

  it.skipIf(!isWarren())('stream → 406 "unsupported queue type \'stream\'" until Warren has streams (Warren: RabbitMQ 3.9+ has them)', async () => {
    await scope.expectDeclareRefused({ 'x-queue-type': 'stream' }, (q) => invalidArg('x-queue-type', q, `"unsupported queue type 'stream'"`), {
      durable: true,
    });
  });
});

describe('basic.consume arguments by queue type', () => {
  it('classic: x-stream-offset → 406 "of queue type rabbit_classic_queue"', async () => {
    const q = await scope.queue('classic');
    const ch = await scope.channel();
    await expectChannelClose(ch, { code: 406, text: ofType('x-stream-offset', q, 'rabbit_classic_queue'), method: BASIC_CONSUME }, () =>
      ch.consume(q, () => {}, { arguments: { 'x-stream-offset': 'first' } }),
    );
  });

  it('quorum: x-cancel-on-ha-failover → 406 "of queue type rabbit_quorum_queue"', async () => {
    const q = await quorumQueue();
    const ch = await scope.channel();
    await expectChannelClose(ch, { code: 406, text: ofType('x-cancel-on-ha-failover', q, 'rabbit_quorum_queue'), method: BASIC_CONSUME }, () =>
      ch.consume(q, () => {}, { arguments: { 'x-cancel-on-ha-failover': true } }),
    );
  });

  it('quorum: consuming on a channel with a global prefetch → connection error 540 NOT_IMPLEMENTED', async () => {
    const q = await quorumQueue();
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    await ch.prefetch(5, true);
    await expectConnectionClose(conn, { code: 540, text: `NOT_IMPLEMENTED - queue '${q}' in vhost '/' does not support global qos` }, () =>
      ch.consume(q, () => {}),
    );
  });

  it('quorum: a per-consumer prefetch and exclusive consumers are fine', async () => {
    const q = await quorumQueue();
    const ch = await scope.channel();
    await ch.prefetch(5, false);
    await ch.consume(q, () => {}, { exclusive: true });
  });
});

const headersOf = (m: ConsumeMessage | null): Record<string, unknown> => (m!.properties.headers ?? {}) as Record<string, unknown>;

describe('quorum queue: delivery count and x-delivery-limit', () => {
  it('a returned message comes back with x-delivery-count and redelivered; past the limit it is dead-lettered as delivery_limit', async () => {
    const ch = await scope.channel();
    const dead = await sink(ch);
    const q = await quorumQueue({ 'x-delivery-limit': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead.queue });
    ch.sendToQueue(q, Buffer.from('m'), { headers: { a: 1 } });
    const inbox = await consumeInto(ch, q, { noAck: false });
    const first = (await inbox.nth(1))!;
    expect(first.fields.redelivered).toBe(false);
    expect(headersOf(first)).toEqual({ a: 1 });
    ch.nack(first, false, true);
    const second = (await inbox.nth(2))!;
    expect(second.fields.redelivered).toBe(true);
    expect(headersOf(second)).toEqual({ a: 1, 'x-delivery-count': 1 });
    ch.nack(second, false, true);
    const m = (await dead.inbox.nth(1))!;
    expect(bodyOf(m)).toBe('m');
    expect(xDeath(m)[0]).toMatchObject({ count: 1, reason: 'delivery_limit', queue: q, exchange: '', 'routing-keys': [q] });
    expect(headersOf(m)['x-first-death-reason']).toBe('delivery_limit');
    expect(headersOf(m)['x-delivery-count']).toBeUndefined();
  });

  it('without a dead-letter exchange, a message past its limit is dropped', async () => {
    const q = await quorumQueue({ 'x-delivery-limit': 0 });
    const ch = await openConfirmChannel(await scope.connection());
    expect(await publishConfirmed(ch, '', q, 'once')).toBe('ack');
    expect(await publishConfirmed(ch, '', q, 'marker')).toBe('ack');
    await ch.prefetch(1);
    const inbox = await consumeInto(ch, q, { noAck: false });
    const once = (await inbox.nth(1))!;
    expect(bodyOf(once)).toBe('once');
    ch.reject(once, true);
    // prefetch 1: the next delivery follows the reject; a requeued 'once' would come first
    const next = (await inbox.nth(2))!;
    expect(bodyOf(next)).toBe('marker');
    ch.ack(next);
  });

  it('basic.get always carries x-delivery-count (0 on a first delivery)', async () => {
    const q = await quorumQueue();
    const ch = await openConfirmChannel(await scope.connection());
    expect(await publishConfirmed(ch, '', q, 'g')).toBe('ack');
    const m1 = await getOne(ch, q);
    expect([m1.properties.headers, m1.fields.redelivered]).toEqual([{ 'x-delivery-count': 0 }, false]);
    ch.nack(m1, false, true);
    const inbox = await consumeInto(ch, q, { noAck: true });
    const m2 = (await inbox.nth(1))!;
    expect([m2.properties.headers, m2.fields.redelivered]).toEqual([{ 'x-delivery-count': 1 }, true]);
  });

  it('unacked deliveries returned by a closing channel count too', async () => {
    const q = await quorumQueue({ 'x-delivery-limit': 5 });
    const first = await scope.channel();
    first.sendToQueue(q, Buffer.from('c'));
    const inbox = await consumeInto(first, q, { noAck: false });
    await inbox.nth(1);
    await first.close();
    const second = await scope.channel();
    const again = await consumeInto(second, q, { noAck: true });
    expect(headersOf(await again.nth(1))).toEqual({ 'x-delivery-count': 1 });
  });
});

describe('quorum queue: other semantics', () => {
  it('message priorities are ignored: first in, first out', async () => {
    const q = await quorumQueue();
    const ch = await openConfirmChannel(await scope.connection());
    expect(await publishConfirmed(ch, '', q, 'low', { priority: 1 })).toBe('ack');
    expect(await publishConfirmed(ch, '', q, 'high', { priority: 9 })).toBe('ack');
    expect(bodyOf(await getOne(ch, q, { noAck: true }))).toBe('low');
    expect(bodyOf(await getOne(ch, q, { noAck: true }))).toBe('high');
  });

  it('x-overflow reject-publish-dlx acts as drop-head (RabbitMQ 3.10 quorum queues do not do reject-publish-dlx)', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const dead = await sink(ch);
    const q = await quorumQueue({
      'x-max-length': 1,
      'x-overflow': 'reject-publish-dlx',
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': dead.queue,
    });
    expect(await publishConfirmed(ch, '', q, 'a')).toBe('ack');
    expect(await publishConfirmed(ch, '', q, 'b')).toBe('ack');
    const m = await dead.inbox.nth(1);
    expect([bodyOf(m), xDeath(m)[0]!.reason]).toEqual(['a', 'maxlen']);
    expect(bodyOf(await getOne(ch, q, { noAck: true }))).toBe('b');
  });

  it('publisher confirms cover transient messages too', async () => {
    const q = await quorumQueue();
    const ch = await openConfirmChannel(await scope.connection());
    expect(await publishConfirmed(ch, '', q, 'transient', { deliveryMode: 1 })).toBe('ack');
    expect(bodyOf(await getOne(ch, q, { noAck: true }))).toBe('transient');
  });
});
