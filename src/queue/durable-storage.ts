import type { Message } from '../message/message.js';
import type { Store } from '../store/store.js';

/**
 * Default per-queue memory window (entries). Large enough that a queue a few thousand
 * messages deep (a consumer slightly behind) never touches the store for paging; small
 * enough that a million-message backlog costs tens of MB.
 */
export const DEFAULT_MEMORY_WINDOW = 16384;

/**
 * The broker-wide side of durable queues: message and queue ids, and the reference
 * counts that free a stored body when the last queue holding it lets go. A message
 * routed to several durable queues is written once; only messages referenced by
 * more than one entry need a counter here.
 */
export class DurableStorage {
  nextMessageId = 1;
  nextQueueId = 1;
  private readonly shared = new Map<number, number>();

  constructor(
    readonly store: Store,
    /** non-durable queues may page their backlog to this store (true when it is on disk) */
    readonly pagesTransientQueues = false,
    /** ready entries a queue keeps in memory before paging the rest to the store */
    readonly memoryWindow = DEFAULT_MEMORY_WINDOW,
  ) {}

  restore(nextMessageId: number, nextQueueId: number, sharedRefs: ReadonlyMap<number, number>): void {
    this.nextMessageId = Math.max(this.nextMessageId, nextMessageId);
    this.nextQueueId = Math.max(this.nextQueueId, nextQueueId);
    for (const [id, n] of sharedRefs) this.shared.set(id, n);
  }

  allocateQueueId(): number {
    return this.nextQueueId++;
  }

  /**
   * Writes a persistent message's body once, however many durable queues take it. Each
   * call is one more entry referencing it: a queue that refuses the message (overflow,
   * expiry on arrival) never calls, so the count is what is actually held.
   */
  persistShared(message: Message): number {
    if (message.storeId === 0) {
      message.storeId = this.nextMessageId++;
      this.store.putMessage(message.storeId, message);
    }
    if (message.durableRefs > 1) this.shared.set(message.storeId, (this.shared.get(message.storeId) ?? 0) + 1);
    return message.storeId;
  }

  /** Writes a private copy (a transient message paged out of memory by one queue). */
  persistPrivate(message: Message): number {
    const id = this.nextMessageId++;
    this.store.putMessage(id, message);
    return id;
  }

  /** One entry referencing the stored message is gone (refs: the entry's refs field). */
  release(messageId: number, refs: number): void {
    if (refs > 1) {
      const left = (this.shared.get(messageId) ?? 1) - 1;
      if (left > 0) {
        this.shared.set(messageId, left);
        return;
      }
      this.shared.delete(messageId);
    }
    this.store.deleteMessage(messageId);
  }

  /** A deleted queue's entry of a shared message is gone (Store.deleteQueue reports them). */
  readonly releaseShared = (messageId: number): void => {
    this.release(messageId, 2);
  };
}
