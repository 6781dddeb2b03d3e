// Paging driven by the broker-wide memory budget (queue/memory-budget.ts): queues keep
// their messages in memory while the budget allows, the biggest backlogs page first when it
// does not, order and flags survive, and a queue whose consumer catches up is all in memory
// again (no one-way latch). Runs on the memory store, whose spill runs the same paths.
import { describe, expect, it } from 'vitest';
import { Message } from '../../src/message/message.js';
import { encodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { Consumer, type ConsumerOwner } from '../../src/queue/consumer.js';
import { ENTRY_OVERHEAD, MemoryBudget } from '../../src/queue/memory-budget.js';
import { fieldTableFromJs } from '../../src/protocol/field-table.js';
import { Queue, type QueueHost } from '../../src/queue/queue.js';
import type { QueueEntry } from '../../src/queue/queue-entry.js';
import { QueueStorage } from '../../src/queue/queue-storage.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const BODY = 1000;
const COST = ENTRY_OVERHEAD + BODY;

const host = {
  queueUnused() {},
  queueStoreError(_q: Queue, err: unknown) {
    throw err;
  },
  queueCallbackFailed(_q: Queue, err: unknown) {
    throw err;
  },
  deadLetter() {},
} as unknown as QueueHost;

function setup(budgetMessages: number): { store: MemoryStore; budget: MemoryBudget; queue: (name: string, durable?: boolean, args?: Map<string, never>) => Queue } {
  const store = new MemoryStore();
  const budget = new MemoryBudget(budgetMessages * COST);
  const storage = new QueueStorage(store, true, budget);
  const queue = (name: string, durable = false): Queue =>
    new Queue(name, { durable, autoDelete: false, exclusiveOwner: null, arguments: new Map() }, host, undefined, durable ? store.allocateQueueId() : 0, storage);
  return { store, budget, queue };
}

function message(n: number, persistent = false, expiration?: string): Message {
  const props = encodeBasicProperties({ deliveryMode: persistent ? 2 : 1, ...(expiration === undefined ? {} : { expiration }) });
  const body = Buffer.alloc(BODY, n & 0xff);
  body.write(`${n}:`, 'latin1');
  const m = new Message('', 'q', props, body);
  m.durableRefs = 1;
  return m;
}

const numberOf = (e: QueueEntry): number => Number(e.message.body.toString('latin1', 0, 12).split(':')[0]);

/** the budget's relief (and spill reads) run after the current I/O */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A consumer that takes up to `credit` deliveries and records them; `more` grants more. */
function consumer(q: Queue, noAck = true): { got: QueueEntry[]; more(n: number): void; until(count: number): Promise<void> } {
  const got: QueueEntry[] = [];
  let credit = 0;
  let wake: (() => void) | null = null;
  const owner = {
    canDeliver: () => credit > 0,
    deliver(_c: Consumer, _q: Queue, entry: QueueEntry) {
      credit--;
      got.push(entry);
      wake?.();
    },
    consumerCancelled() {},
  } as unknown as ConsumerOwner;
  q.addConsumer(new Consumer('c', q, owner, noAck, false, 0, new Map()));
  return {
    got,
    more(n: number) {
      credit += n;
      q.scheduleDelivery();
    },
    until(count: number) {
      return new Promise<void>((resolve) => {
        wake = () => {
          if (got.length >= count) resolve();
        };
        wake();
      });
    },
  };
}

describe('paging driven by the memory budget', () => {
  it('keeps everything in memory within the budget', async () => {
    const { budget, queue } = setup(1000);
    const q = queue('q');
    for (let i = 0; i < 900; i++) q.enqueue(message(i));
    await tick();
    expect(q.pagedOutCount).toBe(0);
    expect(budget.used).toBe(900 * COST);
  });

  it('over the budget the biggest backlog pages first, in chunks, and the total comes back under the budget', async () => {
    const { budget, queue } = setup(2000);
    const big = queue('big');
    const small = queue('small');
    for (let i = 0; i < 300; i++) small.enqueue(message(i));
    for (let i = 0; i < 3000; i++) big.enqueue(message(i));
    await tick();
    expect(budget.used).toBeLessThanOrEqual(budget.limit);
    expect(small.pagedOutCount).toBe(0);
    expect(big.pagedOutCount).toBeGreaterThan(0);
    expect(big.messageCount).toBe(3000);
    // the relief freed at least the 10% margin at once, not a message at a time
    expect(budget.reliefs).toBeLessThanOrEqual(3);
    // a flood keeps it bounded
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 1000; i++) big.enqueue(message(3000 + round * 1000 + i));
      await tick();
      expect(budget.used).toBeLessThanOrEqual(budget.limit);
    }
    expect(big.messageCount).toBe(8000);
  });

  it('a queue that paged is all in memory again once its consumer catches up, and later publishes stay there', async () => {
    const { budget, queue } = setup(1500);
    const q = queue('q', true);
    for (let i = 0; i < 5000; i++) q.enqueue(message(i, i % 3 === 0));
    await tick();
    expect(q.pagedOutCount).toBeGreaterThan(2000);
    // new publishes while the older ones are paged still go to memory (the tail) while the budget allows
    const c = consumer(q);
    c.more(5000);
    await c.until(5000);
    expect(c.got.map(numberOf)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(q.pagedOutCount).toBe(0);
    expect(q.messageCount).toBe(0);
    // caught up: the queue takes new messages in memory, none paged
    for (let i = 0; i < 1000; i++) q.enqueue(message(5000 + i));
    await tick();
    expect(q.pagedOutCount).toBe(0);
    expect(q.ready.length).toBe(1000);
    expect(budget.used).toBe(1000 * COST);
  });

  it('publishes arriving while older messages are paged stay in memory when the budget allows (no latch)', async () => {
    const { budget, queue } = setup(1000);
    const q = queue('q');
    for (let i = 0; i < 3000; i++) q.enqueue(message(i));
    await tick();
    const paged = q.pagedOutCount;
    expect(paged).toBeGreaterThan(0);
    // the relief left room under the budget: the next publishes stay in memory, behind the paged ones
    expect(budget.used).toBeLessThan(budget.limit - 50 * COST);
    const inMemoryBefore = q.ready.length;
    for (let i = 0; i < 50; i++) q.enqueue(message(3000 + i));
    await tick();
    expect(q.pagedOutCount).toBe(paged); // nothing more was paged
    expect(q.ready.length).toBe(inMemoryBefore + 50);
    const c = consumer(q);
    c.more(3050);
    await c.until(3050);
    expect(c.got.map(numberOf)).toEqual(Array.from({ length: 3050 }, (_, i) => i));
  });

  it('requeued, redelivered and expiring messages keep their place and flags through paging', async () => {
    const { queue } = setup(500);
    const q = queue('q', true);
    // message 1 expires while paged; the others carry a long TTL
    for (let i = 0; i < 2000; i++) q.enqueue(message(i, i % 2 === 0, i === 1500 ? '1' : '600000'));
    const c = consumer(q, false);
    c.more(3);
    await c.until(3);
    // 0, 1, 2 delivered; 1 goes back (requeued, redelivered), and everything behind is paged
    q.settled(null);
    q.requeue(c.got[1]!);
    await tick();
    expect(q.pagedOutCount).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 5)); // message 1500's TTL (1 ms) passes
    c.more(5000);
    await c.until(3 + 1996);
    await tick();
    const rest = c.got.slice(3);
    expect(rest[0]!.redelivered).toBe(true);
    expect(rest.map(numberOf)).toEqual([1, ...Array.from({ length: 1997 }, (_, i) => i + 3).filter((n) => n !== 1500)]);
    expect(rest.slice(1).every((e) => !e.redelivered)).toBe(true);
    expect(q.messageCount).toBe(0);
  });

  it('purge drops paged messages too; a durable queue starts over under a new id and keeps its unacked deliveries', async () => {
    const { store, budget, queue } = setup(500);
    const q = queue('q', true);
    for (let i = 0; i < 3000; i++) q.enqueue(message(i, true));
    const c = consumer(q, false);
    c.more(2);
    await c.until(2);
    await tick();
    expect(q.pagedOutCount).toBeGreaterThan(0);
    const oldId = q.id;
    expect(q.purge()).toBe(2998);
    q.renumber(store.allocateQueueId());
    store.purgeQueue({ vhost: '/', name: 'q', id: q.id, autoDelete: false, arguments: new Map() }, oldId);
    expect(q.messageCount).toBe(0);
    expect(q.pagedOutCount).toBe(0);
    expect(budget.used).toBe(0);
    await store.deletionsDone();
    expect(await store.readEntries(oldId, null, 10)).toEqual([]);
    // the two deliveries moved to the new id: after a restart they come back
    expect((await store.readEntries(q.id, null, 10)).map((e) => e.seq)).toEqual([1, 2]);
    // acking one releases its body; the other stays readable
    q.settled(null);
    q.discard(c.got[0]!);
    await store.flush();
    expect((await store.readEntries(q.id, null, 10)).map((e) => [e.seq, e.message.body.length])).toEqual([[2, BODY]]);
  });

  it('a quorum queue\'s delivery counts survive paging: x-delivery-count and x-delivery-limit hold for messages read back', async () => {
    // a budget of one message: a lane keeps only its next entry in memory, in chunks of one entry
    const { store, budget } = setup(1);
    const storage = new QueueStorage(store, true, budget);
    const args = fieldTableFromJs({ 'x-queue-type': 'quorum', 'x-delivery-limit': 2 });
    const q = new Queue('qq', { durable: true, autoDelete: false, exclusiveOwner: null, arguments: args }, host, undefined, store.allocateQueueId(), storage);
    for (let i = 0; i < 3; i++) q.enqueue(message(i)); // transient: a quorum queue stores them all the same
    const c = consumer(q, false);
    c.more(3);
    await c.until(3);
    // messages 1 and 2 come back twice each (delivery count 2); each time message 2 is paged
    // out behind message 1 (the budget holds one) and read back from the store
    for (let round = 1; round <= 2; round++) {
      const [one, two] = c.got.slice(-2);
      q.settled(null);
      q.settled(null);
      q.requeue(one!);
      q.requeue(two!);
      await tick();
      expect(q.pagedOutCount).toBe(1);
      if (round === 1) {
        c.more(2);
        await c.until(5);
      }
    }
    expect(c.got.map(numberOf)).toEqual([0, 1, 2, 1, 2]);
    for (let i = 3; i < 40; i++) q.enqueue(message(i));
    await tick();
    expect(q.pagedOutCount).toBe(38);
    c.more(100);
    await c.until(5 + 39);
    const back = c.got.slice(5);
    expect(back.map(numberOf)).toEqual([1, 2, ...Array.from({ length: 37 }, (_, i) => i + 3)]);
    for (const e of back.slice(0, 2)) expect(q.deliveredMessage(e, false).properties().headers?.get('x-delivery-count')).toEqual({ type: 'I', value: 2 });
    expect(q.deliveredMessage(back[2]!, false).properties().headers?.get('x-delivery-count')).toBeUndefined();
    // a third return is past x-delivery-limit 2: the message leaves instead of coming back
    q.settled(null);
    q.requeue(back[1]!);
    expect(q.messageCount).toBe(0);
  });
});
