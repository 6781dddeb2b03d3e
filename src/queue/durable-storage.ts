import type { Message } from '../message/message.js';
import type { Store } from '../store/store.js';

/**
 * Default per-queue memory window (entries). Large enough that a queue a few thousand
 * messages deep (a consumer slightly behind) never touches the store for paging; small
 * enough that a million-message backlog costs tens of MB.
 */
export const DEFAULT_MEMORY_WINDOW = 16384;

/**
 * What queues need of the store: where persistent messages and paged backlogs go. Ids and
 * the reference counts of shared bodies are the store's own bookkeeping.
 */
export class DurableStorage {
  constructor(
    readonly store: Store,
    /** non-durable queues may page their backlog to this store (true when it is on disk) */
    readonly pagesTransientQueues = false,
    /** ready entries a queue keeps in memory before paging the rest to the store */
    readonly memoryWindow = DEFAULT_MEMORY_WINDOW,
  ) {}

  allocateQueueId(): number {
    return this.store.allocateQueueId();
  }

  /**
   * Writes a persistent message's body once, however many durable queues take it (each
   * queue's entry then references it: Store.putEntry).
   */
  persistShared(message: Message): number {
    if (message.storeId === 0) message.storeId = this.store.putMessage(message);
    return message.storeId;
  }

  /** Writes a private copy (a transient message paged out of memory by one queue). */
  persistPrivate(message: Message): number {
    return this.store.putMessage(message);
  }
}
