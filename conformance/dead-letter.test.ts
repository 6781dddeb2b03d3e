import type { ConsumeMessage } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, consumeInto, getOne, nowSeconds, Scope, settle, sink, uniqueName, xDeath } from './support/index.js';

// RabbitMQ extension: dead-letter exchanges (x-dead-letter-exchange, x-dead-letter-routing-key), x-death headers.

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

const headersOf = (m: ConsumeMessage | null): Record<string, unknown> => (m!.properties.headers ?? {}) as Record<string, unknown>;

describe('queue.declare x-dead-letter-exchange / x-dead-letter-routing-key', () => {
  it('a non-string exchange → 406 PRECONDITION_FAILED invalid type', async () => {
    // amqplib sends a small integer as a signed 8-bit 'byte' field
    await scope.expectDeclareRefused(
      { 'x-dead-letter-exchange': 5 },
      (q) => `PRECONDITION_FAILED - invalid type 'byte' for arg 'x-dead-letter-exchange' in queue '${q}' in vhost '/'`,
    );
  });

  it('a routing key without an exchange → 406 PRECONDITION_FAILED routing_key_but_no_dlx_defined', async () => {
    await scope.expectDeclareRefused(
      { 'x-dead-letter-routing-key': 'k' },
      (q) => `PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue '${q}' in vhost '/': routing_key_but_no_dlx_defined`,
    );
  });

  it('a non-string routing key → 406 PRECONDITION_FAILED unacceptable_type', async () => {
    await scope.expectDeclareRefused(
      { 'x-dead-letter-exchange': 'amq.direct', 'x-dead-letter-routing-key': 5 },
      (q) => `PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue '${q}' in vhost '/': {unacceptable_type,byte}`,
    );
  });

  it('a dead-letter exchange that does not exist is accepted; dead-lettered messages are then dropped', async () => {
    const ch = await scope.channel();
    const q = await scope.queue('dl', { 'x-dead-letter-exchange': uniqueName('missing') });
    ch.sendToQueue(q, Buffer.from('x'));
    ch.reject(await getOne(ch, q), false);
    expect(await settle(ch, q)).toBe(0);
    expect(await ch.get(q)).toBe(false);
  });
});

describe('basic.reject / basic.nack requeue=false', () => {
  it('dead-letters with x-death (count, reason, queue, time, exchange, routing-keys, original-expiration) and x-first-death-*', async () => {
    const ch = await scope.channel();
    const dlx = await scope.exchange('dlx', 'fanout');
    const dead = await sink(ch);
    await ch.bindQueue(dead.queue, dlx, '');
    const src = await scope.queue('dl-src', { 'x-dead-letter-exchange': dlx });
    const pub = await scope.exchange('pub', 'direct');
    await ch.bindQueue(src, pub, 'rk1');

    const before = nowSeconds();
    ch.publish(pub, 'rk1', Buffer.from('m1'), {
      headers: { foo: 'bar' },
      expiration: '60000',
      messageId: 'id-1',
      contentType: 'text/plain',
    });
    const got = await getOne(ch, src);
    ch.reject(got, false);
    const m = await dead.inbox.nth(1);
    const after = nowSeconds();

    expect(bodyOf(m)).toBe('m1');
    // delivered from the dead-letter exchange with the original routing key (no x-dead-letter-routing-key)
    expect(m!.fields).toMatchObject({ exchange: dlx, routingKey: 'rk1', redelivered: false });
    // other properties survive; the expiration is removed (kept in x-death as original-expiration)
    expect(m!.properties).toMatchObject({ messageId: 'id-1', contentType: 'text/plain', expiration: undefined });
    const deaths = xDeath(m);
    expect(deaths).toHaveLength(1);
    expect(deaths[0]).toEqual({
      count: 1,
      reason: 'rejected',
      queue: src,
      time: { '!': 'timestamp', value: expect.any(Number) },
      exchange: pub,
      'routing-keys': ['rk1'],
      'original-expiration': '60000',
    });
    expect(deaths[0]!.time.value).toBeGreaterThanOrEqual(before - 1);
    expect(deaths[0]!.time.value).toBeLessThanOrEqual(after + 1);
    expect(headersOf(m)).toMatchObject({
      foo: 'bar',
      'x-first-death-exchange': pub,
      'x-first-death-queue': src,
      'x-first-death-reason': 'rejected',
    });
  });

  it('field order as RabbitMQ writes it: a first x-death entry; headers re-sorted by name', async () => {
    const ch = await scope.channel();
    const dead = await sink(ch);
    const src = await scope.queue('dl-src', { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead.queue });
    ch.sendToQueue(src, Buffer.from('m'), { headers: { z: 1, a: 2 }, expiration: '60000' });
    const got = await getOne(ch, src);
    // delivered as published
    expect(Object.keys(got.properties.headers!)).toEqual(['z', 'a']);
    ch.reject(got, false);
    const m = await dead.inbox.nth(1);
    // RabbitMQ: a new x-death is prepended as [count | info]; amqplib keeps the wire order of table fields
    expect(Object.keys(xDeath(m)[0]!)).toEqual(['count', 'reason', 'queue', 'time', 'exchange', 'routing-keys', 'original-expiration']);
    // RabbitMQ: dead-lettering leaves the headers table sorted by name
    expect(Object.keys(headersOf(m))).toEqual(['a', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason', 'z']);
  });

  it('nack requeue=false (single and multiple) dead-letters in order; requeue=true does not', async () => {
    const ch = await scope.channel();
    const dead = await sink(ch);
    const src = await scope.queue('dl-src', { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead.queue });
    for (const b of ['a', 'b', 'c', 'd']) ch.sendToQueue(src, Buffer.from(b));
    const a = await getOne(ch, src);
    const b = await getOne(ch, src);
    const c = await getOne(ch, src);
    const d = await getOne(ch, src);
    ch.nack(d, false, true);
    ch.nack(a, false, false);
    ch.nack(c, true, false); // b and c
    await dead.inbox.untilCount(3);
    expect(dead.inbox.bodies()).toEqual(['a', 'b', 'c']);
    expect(dead.inbox.received.map((m) => xDeath(m)[0]!.reason)).toEqual(['rejected', 'rejected', 'rejected']);
    void b;
    // d was requeued, not dead-lettered
    expect(bodyOf(await getOne(ch, src, { noAck: true }))).toBe('d');
    await settle(ch, dead.queue);
    expect(dead.inbox.received).toHaveLength(3);
  });

  it('x-dead-letter-routing-key replaces the routing key; routing-keys keeps the original', async () => {
    const ch = await scope.channel();
    const dlx = await scope.exchange('dlx', 'direct');
    const dead = await sink(ch);
    await ch.bindQueue(dead.queue, dlx, 'dead-key');
    const src = await scope.queue('dl-src', { 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead-key' });
    ch.sendToQueue(src, Buffer.from('m'));
    ch.reject(await getOne(ch, src), false);
    const m = await dead.inbox.nth(1);
    expect(m!.fields).toMatchObject({ exchange: dlx, routingKey: 'dead-key' });
    expect(xDeath(m)[0]).toMatchObject({ exchange: '', queue: src, 'routing-keys': [src] });
    expect(xDeath(m)[0]).not.toHaveProperty('original-expiration');
  });

  it('CC keys appear in routing-keys, BCC keys do not; without a dead-letter routing key CC is kept and routes again', async () => {
    const ch = await scope.channel();
    // the dead-letter exchange reaches the sink through the CC key only
    const dlx = await scope.exchange('dlx', 'direct');
    const dead = await sink(ch);
    await ch.bindQueue(dead.queue, dlx, 'cc1');
    const src = await scope.queue('dl-src', { 'x-dead-letter-exchange': dlx });
    const pub = await scope.exchange('pub', 'direct');
    // the queue receives through the BCC key only
    await ch.bindQueue(src, pub, 'bcc1');
    ch.publish(pub, 'rk1', Buffer.from('m'), { headers: { CC: ['cc1'], BCC: ['bcc1'] } });
    const got = await getOne(ch, src);
    expect(got.fields.routingKey).toBe('rk1');
    expect(got.properties.headers).toEqual({ CC: ['cc1'] });
    ch.reject(got, false);
    const m = await dead.inbox.nth(1);
    expect(m!.fields.routingKey).toBe('rk1');
    expect(xDeath(m)[0]!['routing-keys']).toEqual(['rk1', 'cc1']);
    expect(headersOf(m).CC).toEqual(['cc1']);
    expect(headersOf(m)).not.toHaveProperty('BCC');
  });

  it('with x-dead-letter-routing-key the CC header is removed (routing-keys still lists the CC keys)', async () => {
    const ch = await scope.channel();
    const dead = await sink(ch);
    const src = await scope.queue('dl-src', { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead.queue });
    const pub = await scope.exchange('pub', 'direct');
    await ch.bindQueue(src, pub, 'cc1');
    ch.publish(pub, 'rk1', Buffer.from('m'), { headers: { CC: ['cc1'], keep: 'me' } });
    ch.reject(await getOne(ch, src), false);
    const m = await dead.inbox.nth(1);
    expect(m!.fields.routingKey).toBe(dead.queue);
    expect(xDeath(m)[0]!['routing-keys']).toEqual(['rk1', 'cc1']);
    expect(headersOf(m)).not.toHaveProperty('CC');
    expect(headersOf(m).keep).toBe('me');
  });

  it('the dead-lettered message can be routed to several queues by the dead-letter exchange', async () => {
    const ch = await scope.channel();
    const dlx = await scope.exchange('dlx', 'fanout');
    const one = await sink(ch);
    const two = await sink(ch);
    await ch.bindQueue(one.queue, dlx, '');
    await ch.bindQueue(two.queue, dlx, '');
    const src = await scope.queue('dl-src', { 'x-dead-letter-exchange': dlx });
    ch.sendToQueue(src, Buffer.from('fan'));
    ch.reject(await getOne(ch, src), false);
    expect(bodyOf(await one.inbox.nth(1))).toBe('fan');
    expect(bodyOf(await two.inbox.nth(1))).toBe('fan');
  });
});

describe('dead-lettering on expiry', () => {
  it('reason "expired", with the dead-letter routing key and original-expiration', async () => {
    const ch = await scope.channel();
    const dlx = await scope.exchange('dlx', 'topic');
    const dead = await sink(ch);
    await ch.bindQueue(dead.queue, dlx, '#');
    const src = await scope.queue('dl-src', { 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'newkey', 'x-message-ttl': 30 });
    ch.sendToQueue(src, Buffer.from('m2'), { expiration: '20' });
    const m = await dead.inbox.nth(1);
    expect(m!.fields).toMatchObject({ exchange: dlx, routingKey: 'newkey' });
    expect(m!.properties.expiration).toBeUndefined();
    expect(xDeath(m)).toEqual([
      {
        count: 1,
        reason: 'expired',
        queue: src,
        time: { '!': 'timestamp', value: expect.any(Number) },
        exchange: '',
        'routing-keys': [src],
        'original-expiration': '20',
      },
    ]);
    expect(headersOf(m)).toMatchObject({ 'x-first-death-exchange': '', 'x-first-death-queue': src, 'x-first-death-reason': 'expired' });
  });
});

describe('x-death count and cycles', () => {
  it('repeated dead-lettering through the same queues increments count; entries are most-recent first', async () => {
    // q1 (consumer rejects) → q2 (TTL 20) → q1 → …: a cycle with a rejection in it is not broken
    const ch = await scope.channel();
    const q1 = uniqueName('dl-q1');
    const q2 = uniqueName('dl-q2');
    await scope.ch.assertQueue(q1, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q2 } });
    scope.trackQueue(q1);
    await scope.ch.assertQueue(q2, {
      durable: false,
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q1, 'x-message-ttl': 20 },
    });
    scope.trackQueue(q2);

    const seen: ConsumeMessage[] = [];
    let done!: () => void;
    const third = new Promise<void>((r) => (done = r));
    await ch.consume(q1, (m) => {
      if (m === null) return;
      seen.push(m);
      if (seen.length < 3) ch.reject(m, false);
      else {
        ch.ack(m);
        done();
      }
    });
    ch.sendToQueue(q1, Buffer.from('loop'), { headers: { a: 1 } });
    await third;

    expect(headersOf(seen[0]!)).toEqual({ a: 1 });
    const second = xDeath(seen[1]!);
    expect(second.map((d) => [d.queue, d.reason, d.count])).toEqual([
      [q2, 'expired', 1],
      [q1, 'rejected', 1],
    ]);
    const thirdDeaths = xDeath(seen[2]!);
    expect(thirdDeaths.map((d) => [d.queue, d.reason, d.count])).toEqual([
      [q2, 'expired', 2],
      [q1, 'rejected', 2],
    ]);
    expect(thirdDeaths[1]).toMatchObject({ exchange: '', 'routing-keys': [q1] });
    // the first death never changes
    expect(headersOf(seen[2]!)).toMatchObject({ 'x-first-death-queue': q1, 'x-first-death-reason': 'rejected', 'x-first-death-exchange': '' });
    // RabbitMQ: an entry written into an existing x-death array has its fields sorted by name
    expect(Object.keys(second[0]!)).toEqual(['count', 'exchange', 'queue', 'reason', 'routing-keys', 'time']);
    expect(Object.keys(thirdDeaths[1]!)).toEqual(['count', 'exchange', 'queue', 'reason', 'routing-keys', 'time']);
  });

  it('a queue that dead-letters expired messages to itself drops them (fully automatic cycle)', async () => {
    const ch = await scope.channel();
    const dlx = await scope.exchange('dlx', 'fanout');
    const monitor = await sink(ch);
    // no queue TTL: once dead-lettered the message has no expiration left, so a broker without
    // cycle detection would keep it in the queue for good
    const q = await scope.queue('dl-self', { 'x-dead-letter-exchange': dlx });
    await ch.bindQueue(q, dlx, '');
    await ch.bindQueue(monitor.queue, dlx, '');
    ch.sendToQueue(q, Buffer.from('once'), { expiration: '10' });
    const m = await monitor.inbox.nth(1);
    expect(xDeath(m).map((d) => [d.queue, d.reason])).toEqual([[q, 'expired']]);
    // the same routing decision dropped the copy for q
    expect(await settle(ch, q)).toBe(0);
  });

  it('q1 → q2 → q1 by expiry only: the message is dropped when it would re-enter q1; other targets still get it', async () => {
    const ch = await scope.channel();
    const monitor = await sink(ch);
    const back = await scope.exchange('dl-back', 'fanout');
    const q1 = uniqueName('dl-q1');
    const q2 = uniqueName('dl-q2');
    // q1 has no TTL: a message that got back into q1 would stay there
    await scope.ch.assertQueue(q1, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q2 } });
    scope.trackQueue(q1);
    await scope.ch.assertQueue(q2, { durable: false, arguments: { 'x-dead-letter-exchange': back, 'x-message-ttl': 10 } });
    scope.trackQueue(q2);
    await ch.bindQueue(q1, back, '');
    await ch.bindQueue(monitor.queue, back, '');

    ch.sendToQueue(q1, Buffer.from('cycle'), { expiration: '10' });
    const m = await monitor.inbox.nth(1);
    expect(xDeath(m).map((d) => [d.queue, d.reason, d.count])).toEqual([
      [q2, 'expired', 1],
      [q1, 'expired', 1],
    ]);
    expect(xDeath(m)[1]!['original-expiration']).toBe('10');
    expect(await settle(ch, q1)).toBe(0);
    expect(await settle(ch, q2)).toBe(0);
  });

  it('a cycle with a rejection in it is not broken (the message re-enters q1)', async () => {
    const ch = await scope.channel();
    const q1 = uniqueName('dl-q1');
    const q2 = uniqueName('dl-q2');
    await scope.ch.assertQueue(q1, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q2 } });
    scope.trackQueue(q1);
    await scope.ch.assertQueue(q2, {
      durable: false,
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q1, 'x-message-ttl': 10 },
    });
    scope.trackQueue(q2);
    ch.sendToQueue(q1, Buffer.from('back'));
    ch.reject(await getOne(ch, q1), false);
    const inbox = await consumeInto(ch, q1, { noAck: true });
    const m = await inbox.nth(1);
    expect(bodyOf(m)).toBe('back');
    expect(xDeath(m).map((d) => [d.queue, d.reason])).toEqual([
      [q2, 'expired'],
      [q1, 'rejected'],
    ]);
  });
});
