import type { Store } from '../store/store.js';
import type { MemoryBudget } from './memory-budget.js';

/**
 * What queues need of the broker beyond themselves: the store (persistent messages of
 * durable queues; the spill for paging) and, when queues page, the broker-wide memory
 * budget and the per-queue window.
 */
export class QueueStorage {
  constructor(
    readonly store: Store,
    /** queues page their backlog out of memory (the broker has a data dir) */
    readonly paging: boolean,
    readonly budget: MemoryBudget,
    /** ready messages a queue keeps in memory at most, whatever the budget (0 = no such limit) */
    readonly memoryWindow = 0,
  ) {}
}
