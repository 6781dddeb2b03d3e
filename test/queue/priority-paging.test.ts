// A priority queue with a paged backlog must keep memory bounded when higher-priority
// messages keep arriving (with nobody consuming), and still deliver every message once,
// in priority order, FIFO within a priority, whether it was kept in memory or paged.
import { describe, expect, it } from 'vitest';
import { Message } from '../../src/message/message.js';
import { encodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { Consumer, type ConsumerOwner } from '../../src/queue/consumer.js';
import { MemoryBudget } from '../../src/queue/memory-budget.js';
import { Queue, type QueueHost } from '../../src/queue/queue.js';
import type { QueueEntry } from '../../src/queue/queue-entry.js';
import { QueueStorage } from '../../src/queue/queue-storage.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const WINDOW = 10;
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

function priorityQueue(durable: boolean): { q: Queue; store: MemoryStore } {
  const store = new MemoryStore();
  const storage = new QueueStorage(store, true, new MemoryBudget(Infinity), WINDOW);
  const args = new Map([['x-max-priority', { type: 'B' as const, value: 10 }]]);
  const q = new Queue('pq', { durable, autoDelete: false, exclusiveOwner: null, arguments: args }, host, undefined, durable ? store.allocateQueueId() : 0, storage);
  return { q, store };
}

function message(priority: number, n: number, persistent: boolean): Message {
  const props = encodeBasicProperties({ priority, deliveryMode: persistent ? 2 : 1 });
  const m = new Message('', 'pq', props, Buffer.from(`${priority}:${n}`));
  m.durableRefs = 1;
  return m;
}

/** the budget's relief runs after the current I/O */
const relief = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Consumes everything (no-ack), paging in as it goes; resolves with the bodies in delivery order. */
async function drainAll(q: Queue, expected: number): Promise<string[]> {
  const got: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const owner: ConsumerOwner = {
    canDeliver: () => true,
    deliver(_c: Consumer, _q: Queue, entry: QueueEntry) {
      got.push(entry.message.body.toString());
      if (got.length === expected) done();
    },
    consumerCancelled() {},
  } as unknown as ConsumerOwner;
  q.addConsumer(new Consumer('c', q, owner, true, false, 0, new Map()));
  q.scheduleDelivery();
  await finished;
  return got;
}

describe('priority queue paging', () => {
  for (const durable of [false, true]) {
    it(`higher priorities arriving over a paged backlog stay within the window, and all arrive in order (${durable ? 'durable' : 'transient'} queue)`, async () => {
      const { q } = priorityQueue(durable);
      const expected: string[] = [];
      // a low-priority backlog, mostly paged out
      for (let i = 0; i < 50; i++) q.enqueue(message(1, i, i % 2 === 0));
      await relief();
      expect(q.ready.length).toBeLessThanOrEqual(WINDOW);
      expect(q.pagedOutCount).toBeGreaterThan(0);
      // then rising priorities, each well past the window
      for (const p of [3, 5, 9]) {
        for (let i = 0; i < 40; i++) {
          q.enqueue(message(p, i, i % 3 === 0));
          if (i % 10 === 9) {
            await relief();
            expect(q.ready.length).toBeLessThanOrEqual(WINDOW);
          }
        }
      }
      for (const p of [9, 5, 3]) for (let i = 0; i < 40; i++) expected.push(`${p}:${i}`);
      for (let i = 0; i < 50; i++) expected.push(`1:${i}`);
      expect(q.messageCount).toBe(expected.length);
      expect(await drainAll(q, expected.length)).toEqual(expected);
      expect(q.messageCount).toBe(0);
      expect(q.pagedOutCount).toBe(0);
    });
  }
});
