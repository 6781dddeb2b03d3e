import type { ConfirmChannel } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, consumeInto, drain, expectChannelClose, getOne, openChannel, openConfirmChannel, Scope, settle } from './support/index.js';

// RabbitMQ extension: priority queues (x-max-priority) and consumer priorities (x-priority).

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

async function publishAll(ch: ConfirmChannel, queue: string, items: [string, number | undefined][]): Promise<void> {
  for (const [body, priority] of items) ch.sendToQueue(queue, Buffer.from(body), priority === undefined ? {} : { priority });
  await ch.waitForConfirms();
}

describe('queue.declare x-max-priority', () => {
  it.each([1, 10, 255])('accepts %i', async (max) => {
    const q = await scope.queue('prio', { 'x-max-priority': max });
    expect((await scope.ch.checkQueue(q)).messageCount).toBe(0);
  });

  // RabbitMQ: the argument's validation errors are 406 on queue.declare (50/10), naming the argument and queue
  it.each([
    [256, '{max_value_exceeded,256}'],
    [-1, '{value_negative,-1}'],
    ['10', '"expected integer, got longstr"'],
    [1.5, '"expected integer, got double"'],
  ])('x-max-priority %j → channel error 406 PRECONDITION_FAILED', async (value, detail) => {
    await scope.expectInvalidArg('x-max-priority', value, detail);
  });

  it('x-max-priority 0 is accepted and the queue is not a priority queue (FIFO)', async () => {
    const q = await scope.queue('prio0', { 'x-max-priority': 0 });
    const ch = await openConfirmChannel(await scope.connection());
    await publishAll(ch, q, [
      ['p0', 0],
      ['p9', 9],
    ]);
    expect(await drain(ch, q)).toEqual(['p0', 'p9']);
  });
});

describe('basic.publish priority', () => {
  it('higher priority first, FIFO within a priority, above the max counts as the max, none counts as 0', async () => {
    const q = await scope.queue('prio', { 'x-max-priority': 5 });
    const ch = await openConfirmChannel(await scope.connection());
    await publishAll(ch, q, [
      ['a', 1],
      ['b', 5],
      ['c', undefined],
      ['d', 9],
      ['e', 5],
      ['f', 0],
      ['g', 1],
      ['h', 200],
    ]);
    const got: string[] = [];
    const priorities: (number | undefined)[] = [];
    for (;;) {
      const m = await ch.get(q, { noAck: true });
      if (m === false) break;
      got.push(bodyOf(m));
      priorities.push(m.properties.priority as number | undefined);
    }
    // 9 and 200 rank as 5 (the max) in publish order with the 5s
    expect(got).toEqual(['b', 'd', 'e', 'h', 'a', 'g', 'c', 'f']);
    // the property itself is delivered unchanged
    expect(priorities).toEqual([5, 9, 5, 200, 1, 1, undefined, 0]);
  });

  it('a consumer attached to a filled priority queue receives in priority order', async () => {
    const q = await scope.queue('prio', { 'x-max-priority': 10 });
    const ch = await openConfirmChannel(await scope.connection());
    await publishAll(ch, q, [
      ['low', 1],
      ['high', 10],
      ['mid', 5],
      ['mid2', 5],
    ]);
    const inbox = await consumeInto(ch, q, { noAck: true });
    await inbox.untilCount(4);
    expect(inbox.bodies()).toEqual(['high', 'mid', 'mid2', 'low']);
  });

  it('a queue without x-max-priority ignores the priority property (FIFO)', async () => {
    const q = await scope.queue('noprio');
    const ch = await openConfirmChannel(await scope.connection());
    await publishAll(ch, q, [
      ['p0', 0],
      ['p9', 9],
      ['p5', 5],
    ]);
    expect(await drain(ch, q)).toEqual(['p0', 'p9', 'p5']);
  });

  it('requeued messages keep their priority (nack requeue=true, then get order)', async () => {
    const q = await scope.queue('prio', { 'x-max-priority': 5 });
    const ch = await openConfirmChannel(await scope.connection());
    await publishAll(ch, q, [
      ['lo', 1],
      ['hi', 4],
      ['mid', 2],
    ]);
    const first = await getOne(ch, q);
    const second = await getOne(ch, q);
    expect([bodyOf(first), bodyOf(second)]).toEqual(['hi', 'mid']);
    ch.nack(first, false, true);
    ch.nack(second, false, true);
    await settle(ch, q);
    const order: string[] = [];
    for (;;) {
      const m = await ch.get(q, { noAck: true });
      if (m === false) break;
      order.push(`${bodyOf(m)}:${m.fields.redelivered}`);
    }
    expect(order).toEqual(['hi:true', 'mid:true', 'lo:false']);
  });
});

describe('basic.consume x-priority', () => {
  it('the higher-priority consumer with credit gets every message', async () => {
    const q = await scope.queue('cprio');
    const ch = await openChannel(await scope.connection());
    const low = await consumeInto(ch, q, { noAck: true, priority: 1 });
    const high = await consumeInto(ch, q, { noAck: true, priority: 10 });
    const normal = await consumeInto(ch, q, { noAck: true });
    for (let i = 0; i < 10; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await high.untilCount(10);
    await settle(ch, q);
    expect(high.bodies()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    expect(low.received).toEqual([]);
    expect(normal.received).toEqual([]);
  });

  it('a negative priority ranks below the default 0', async () => {
    const q = await scope.queue('cprio');
    const ch = await openChannel(await scope.connection());
    const negative = await consumeInto(ch, q, { noAck: true, priority: -5 });
    const normal = await consumeInto(ch, q, { noAck: true });
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await normal.untilCount(3);
    await settle(ch, q);
    expect(negative.received).toEqual([]);
  });

  it('the lower-priority consumer gets messages only while the higher one is blocked by prefetch', async () => {
    const q = await scope.queue('cprio');
    const conn = await scope.connection();
    const highCh = await openChannel(conn);
    await highCh.prefetch(2);
    const high = await consumeInto(highCh, q, { noAck: false, priority: 10 });
    const lowCh = await openChannel(conn);
    const low = await consumeInto(lowCh, q, { noAck: true, priority: 1 });
    const pub = await openConfirmChannel(conn);
    for (let i = 0; i < 5; i++) pub.sendToQueue(q, Buffer.from(`m${i}`));
    await pub.waitForConfirms();
    await high.untilCount(2);
    await low.untilCount(3);
    expect(high.bodies()).toEqual(['m0', 'm1']);
    expect(low.bodies()).toEqual(['m2', 'm3', 'm4']);

    // once the high-priority consumer has credit again, it is preferred again
    highCh.ack(high.received[1]!, true);
    await settle(highCh, q);
    for (let i = 5; i < 7; i++) pub.sendToQueue(q, Buffer.from(`m${i}`));
    await pub.waitForConfirms();
    await high.untilCount(4);
    await settle(lowCh, q);
    expect(high.bodies().slice(2)).toEqual(['m5', 'm6']);
    expect(low.bodies()).toEqual(['m2', 'm3', 'm4']);
  });

  it.each([
    ['high', '"expected integer, got longstr"'],
    [1.5, '"expected integer, got double"'],
  ])('x-priority %j → channel error 406 PRECONDITION_FAILED on basic.consume', async (value, detail) => {
    const q = await scope.queue('cprio');
    const conn = await scope.connection();
    const ch = await openChannel(conn);
    await expectChannelClose(
      ch,
      { code: 406, text: `PRECONDITION_FAILED - invalid arg 'x-priority' for queue '${q}' in vhost '/': ${detail}`, method: [60, 20] },
      () => ch.consume(q, () => {}, { arguments: { 'x-priority': value } }),
    );
  });
});
