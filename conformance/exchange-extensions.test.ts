import type { Message } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  bodyOf,
  connect,
  consumeInto,
  drain,
  expectChannelClose,
  expectConnectionClose,
  getOne,
  isWarren,
  openChannel,
  openConfirmChannel,
  publishConfirmed,
  requireExchangeType,
  Scope,
  settle,
  uniqueName,
} from './support/index.js';

// RabbitMQ extensions on exchanges: alternate exchanges, sender-selected distribution (CC/BCC),
// the consistent-hash exchange (plugin) and the delayed-message exchange (plugin; Warren only).

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

describe('exchange.declare alternate-exchange', () => {
  it('unroutable messages go to the alternate exchange, keeping their exchange and routing key', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const ae = await scope.exchange('ae', 'fanout');
    const aq = await scope.queue('ae-q');
    await ch.bindQueue(aq, ae, '');
    const x = await scope.exchange('x', 'direct', { 'alternate-exchange': ae });
    const bound = await scope.queue('x-q');
    await ch.bindQueue(bound, x, 'known');

    expect(await publishConfirmed(ch, x, 'nowhere', 'lost')).toBe('ack');
    expect(await publishConfirmed(ch, x, 'known', 'routed')).toBe('ack');
    const m = await getOne(ch, aq, { noAck: true });
    expect(bodyOf(m)).toBe('lost');
    expect(m.fields).toMatchObject({ exchange: x, routingKey: 'nowhere' });
    // a routable message does not go to the alternate exchange
    expect(await ch.get(aq)).toBe(false);
    expect(await drain(ch, bound)).toEqual(['routed']);
  });

  it('mandatory + routed by the alternate exchange → no basic.return', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const ae = await scope.exchange('ae', 'fanout');
    const aq = await scope.queue('ae-q');
    await ch.bindQueue(aq, ae, '');
    const x = await scope.exchange('x', 'direct', { 'alternate-exchange': ae });
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    expect(await publishConfirmed(ch, x, 'nowhere', 'm', { mandatory: true })).toBe('ack');
    // a basic.return would precede the ack
    expect(returned).toEqual([]);
    expect(await drain(ch, aq)).toEqual(['m']);
  });

  it('mandatory + the alternate exchange routes nowhere either (or does not exist) → basic.return 312 NO_ROUTE', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const emptyAe = await scope.exchange('ae', 'fanout');
    const x1 = await scope.exchange('x', 'direct', { 'alternate-exchange': emptyAe });
    const x2 = await scope.exchange('x', 'direct', { 'alternate-exchange': uniqueName('missing') });
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    await publishConfirmed(ch, x1, 'k1', 'a', { mandatory: true });
    await publishConfirmed(ch, x2, 'k2', 'b', { mandatory: true });
    expect(returned.map((m) => [bodyOf(m), m.fields])).toEqual([
      ['a', { replyCode: 312, replyText: 'NO_ROUTE', exchange: x1, routingKey: 'k1' }],
      ['b', { replyCode: 312, replyText: 'NO_ROUTE', exchange: x2, routingKey: 'k2' }],
    ]);
  });

  it('alternate exchanges chain, and a cycle of them ends (returned when mandatory)', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const last = await scope.exchange('ae-last', 'fanout');
    const lq = await scope.queue('ae-q');
    await ch.bindQueue(lq, last, '');
    const middle = await scope.exchange('ae-mid', 'direct', { 'alternate-exchange': last });
    const first = await scope.exchange('x', 'direct', { 'alternate-exchange': middle });
    expect(await publishConfirmed(ch, first, 'nowhere', 'chained')).toBe('ack');
    expect(await drain(ch, lq)).toEqual(['chained']);

    const c1 = uniqueName('ae-c1');
    const c2 = uniqueName('ae-c2');
    await ch.assertExchange(c1, 'direct', { durable: false, arguments: { 'alternate-exchange': c2 } });
    scope.trackExchange(c1);
    await ch.assertExchange(c2, 'direct', { durable: false, arguments: { 'alternate-exchange': c1 } });
    scope.trackExchange(c2);
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    expect(await publishConfirmed(ch, c1, 'nowhere', 'loop', { mandatory: true })).toBe('ack');
    expect(returned.map((m) => m.fields.exchange)).toEqual([c1]);
  });

  it('a non-string alternate-exchange → channel error 406 PRECONDITION_FAILED', async () => {
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    const x = uniqueName('ae-bad');
    await expectChannelClose(
      ch,
      { code: 406, text: `PRECONDITION_FAILED - invalid type 'byte' for arg 'alternate-exchange' in exchange '${x}' in vhost '/'`, method: [40, 10] },
      () => ch.assertExchange(x, 'direct', { durable: false, arguments: { 'alternate-exchange': 5 } }),
    );
  });
});

describe('basic.publish CC / BCC (sender-selected distribution)', () => {
  it('CC and BCC route to extra keys; BCC is stripped before delivery, CC is kept; the routing key stays', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const x = await scope.exchange('ssd', 'direct');
    const main = await scope.queue('ssd-main');
    const cc = await scope.queue('ssd-cc');
    const bcc = await scope.queue('ssd-bcc');
    await ch.bindQueue(main, x, 'main');
    await ch.bindQueue(cc, x, 'cc1');
    await ch.bindQueue(bcc, x, 'bcc1');
    ch.publish(x, 'main', Buffer.from('hello'), { headers: { CC: ['cc1'], BCC: ['bcc1'], other: 'kept' } });
    await ch.waitForConfirms();
    for (const q of [main, cc, bcc]) {
      const m = await getOne(ch, q, { noAck: true });
      expect(bodyOf(m)).toBe('hello');
      expect(m.fields).toMatchObject({ exchange: x, routingKey: 'main' });
      expect(m.properties.headers).toEqual({ CC: ['cc1'], other: 'kept' });
    }
  });

  it('on a topic exchange CC keys are matched against patterns like the routing key', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const x = await scope.exchange('ssd', 'topic');
    const q = await scope.queue('ssd-topic');
    await ch.bindQueue(q, x, 'audit.#');
    ch.publish(x, 'orders.created', Buffer.from('t'), { headers: { CC: ['audit.orders'] } });
    await ch.waitForConfirms();
    expect(await drain(ch, q)).toEqual(['t']);
  });

  it('a queue matched by the routing key, CC and BCC at once gets one copy', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('ssd-dup');
    ch.publish('', q, Buffer.from('once'), { headers: { CC: [q], BCC: [q] } });
    await ch.waitForConfirms();
    expect(await drain(ch, q)).toEqual(['once']);
  });

  it('mandatory: routable through a BCC key only → not returned; routable through none → returned', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('ssd');
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    // amq.direct has no binding for q yet: nothing matches the routing key nor the BCC key
    const nobody = uniqueName('nobody');
    await publishConfirmed(ch, 'amq.direct', nobody, 'm1', { mandatory: true, headers: { BCC: [q] } });
    expect(returned.map((m) => [bodyOf(m), m.fields.routingKey, m.fields.exchange])).toEqual([['m1', nobody, 'amq.direct']]);
    // even the returned message has its BCC header stripped
    expect(returned[0]!.properties.headers).toEqual({});

    await ch.bindQueue(q, 'amq.direct', q);
    expect(await publishConfirmed(ch, 'amq.direct', nobody, 'm2', { mandatory: true, headers: { BCC: [q] } })).toBe('ack');
    expect(returned).toHaveLength(1);
    expect(await drain(ch, q)).toEqual(['m2']);
  });

  it('non-string entries in the CC array are ignored', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const q = await scope.queue('ssd');
    ch.publish('', q, Buffer.from('m'), { headers: { CC: [1] } });
    await ch.waitForConfirms();
    expect(await drain(ch, q)).toEqual(['m']);
  });

  it('a CC header that is not an array → channel error 406 PRECONDITION_FAILED', async () => {
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    const q = await scope.queue('ssd');
    await expectChannelClose(
      ch,
      { code: 406, text: 'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",longstr}', method: [60, 40] },
      () => ch.publish('', q, Buffer.from('m'), { headers: { CC: 'other' } }),
    );
    const check = await openChannel(conn);
    expect((await check.checkQueue(q)).messageCount).toBe(0);
  });
});

describe('exchange.declare type x-consistent-hash', () => {
  // a plugin on RabbitMQ: rabbitmq-plugins enable rabbitmq_consistent_hash_exchange
  beforeAll(() => requireExchangeType('x-consistent-hash', 'rabbitmq_consistent_hash_exchange'));

  it('distributes by routing-key hash roughly by binding weight; the same key always lands in the same queue', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const x = await scope.exchange('chash', 'x-consistent-hash');
    const queues: string[] = [];
    for (const weight of ['1', '2', '3']) {
      const q = await scope.queue('chash-q');
      await ch.bindQueue(q, x, weight);
      queues.push(q);
    }
    const N = 600;
    for (let i = 0; i < N; i++) ch.publish(x, `key-${i}`, Buffer.from(String(i)));
    await ch.waitForConfirms();
    const counts: number[] = [];
    for (const q of queues) counts.push((await ch.checkQueue(q)).messageCount);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(N);
    for (const c of counts) expect(c).toBeGreaterThan(0);
    // weight 3 gets more than weight 1 (RabbitMQ: 109 / 198 / 293 of 600 here)
    expect(counts[2]!).toBeGreaterThan(counts[0]!);

    for (let i = 0; i < 10; i++) ch.publish(x, 'sticky', Buffer.from('s'));
    await ch.waitForConfirms();
    const after: number[] = [];
    for (const q of queues) after.push((await ch.checkQueue(q)).messageCount);
    const grown = after.map((c, i) => c - counts[i]!);
    expect(grown.sort((a, b) => a - b)).toEqual([0, 0, 10]);
  });

  it('hash-header: hashes on a header value instead of the routing key', async () => {
    const ch = await openConfirmChannel(await scope.connection());
    const x = await scope.exchange('chash', 'x-consistent-hash', { 'hash-header': 'user' });
    const queues: string[] = [];
    for (let i = 0; i < 2; i++) {
      const q = await scope.queue('chash-q');
      await ch.bindQueue(q, x, '1');
      queues.push(q);
    }
    // one header value with ever-changing routing keys lands in one queue
    for (let i = 0; i < 20; i++) ch.publish(x, `rk-${i}`, Buffer.from('h'), { headers: { user: 'alice' } });
    await ch.waitForConfirms();
    const counts: number[] = [];
    for (const q of queues) counts.push((await ch.checkQueue(q)).messageCount);
    expect(counts.sort((a, b) => a - b)).toEqual([0, 20]);
  });

  it.each([
    ['abc', 'PRECONDITION_FAILED - The binding key must be an integer: <<"abc">>'],
    ['', 'PRECONDITION_FAILED - The binding key must be an integer: <<>>'],
    ['0', 'PRECONDITION_FAILED - The binding key must be greater than 0'],
    ['-1', 'PRECONDITION_FAILED - The binding key must be greater than 0'],
  ])('binding key %j → channel error 406 PRECONDITION_FAILED on queue.bind', async (key, text) => {
    const x = await scope.exchange('chash', 'x-consistent-hash');
    const q = await scope.queue('chash-q');
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    await expectChannelClose(ch, { code: 406, text: text, method: [50, 20] }, () => ch.bindQueue(q, x, key));
  });

  it.each([
    [{ 'hash-property': 'foo' }, 'PRECONDITION_FAILED - Unsupported property: foo'],
    [{ 'hash-header': 'h', 'hash-property': 'message_id' }, 'PRECONDITION_FAILED - hash-header and hash-property are mutually exclusive'],
  ])('exchange arguments %j → channel error 406 PRECONDITION_FAILED', async (args, text) => {
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    const x = uniqueName('chash-bad');
    await expectChannelClose(ch, { code: 406, text: text, method: [40, 10] }, () =>
      ch.assertExchange(x, 'x-consistent-hash', { durable: false, arguments: args }),
    );
  });
});

describe('exchange.declare type x-delayed-message', () => {
  it.skipIf(isWarren())('RabbitMQ without the plugin: unknown exchange type → connection error 503 COMMAND_INVALID', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const x = uniqueName('delayed');
      await expectConnectionClose(conn, { code: 503, text: "COMMAND_INVALID - unknown exchange type 'x-delayed-message'" }, () =>
        ch.assertExchange(x, 'x-delayed-message', { durable: false, arguments: { 'x-delayed-type': 'direct' } }),
      );
    } finally {
      await conn.close().catch(() => {});
    }
  });

  it.skipIf(!isWarren())('x-delay holds a message back; undelayed messages pass it (Warren extension)', async () => {
    const ch = await scope.channel();
    const x = await scope.exchange('delayed', 'x-delayed-message', { 'x-delayed-type': 'direct' });
    const q = await scope.queue('delayed-q');
    await ch.bindQueue(q, x, 'k');
    const inbox = await consumeInto(ch, q, { noAck: true });
    const started = Date.now();
    ch.publish(x, 'k', Buffer.from('later'), { headers: { 'x-delay': 300 } });
    ch.publish(x, 'k', Buffer.from('now'));
    await inbox.untilCount(2);
    expect(inbox.bodies()).toEqual(['now', 'later']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await settle(ch, q);
  });

  it.skipIf(!isWarren())('delayed messages are routed with the x-delayed-type rules when due (Warren extension)', async () => {
    const ch = await scope.channel();
    const x = await scope.exchange('delayed', 'x-delayed-message', { 'x-delayed-type': 'topic' });
    const q = await scope.queue('delayed-q');
    await ch.bindQueue(q, x, 'a.*');
    const inbox = await consumeInto(ch, q, { noAck: true });
    ch.publish(x, 'b.x', Buffer.from('unmatched'), { headers: { 'x-delay': 20 } });
    ch.publish(x, 'a.x', Buffer.from('matched'), { headers: { 'x-delay': 50 } });
    expect(bodyOf(await inbox.nth(1))).toBe('matched');
    await settle(ch, q);
    expect(inbox.bodies()).toEqual(['matched']);
  });
});
