/**
 * What an in-memory ready message costs besides its body: the Message, its queue entry,
 * the body's Buffer object and the list slot (measured with 500,000 messages: RSS grows by
 * 399 bytes per message with 16-byte bodies, by 392 besides the body with 1 KiB ones).
 */
export const ENTRY_OVERHEAD = 400;
/** a relief pages out down to this share of the budget, so paging happens in large chunks */
const LOW_WATER = 0.9;

/** A queue whose backlog can be paged out of memory. */
export interface Pageable {
  /** memory its in-memory ready messages are charged for (ENTRY_OVERHEAD + body each) */
  readonly memoryCost: number;
  /** in-memory ready messages beyond the queue's own window (0 when within it or without one) */
  readonly overWindow: number;
  /** pages out until `bytes` of memory are freed or `entries` messages are paged; returns the bytes freed */
  pageOut(bytes: number, entries: number): number;
  /** an unexpected failure while paging out (logged by the queue's host) */
  pagingFailed(err: unknown): void;
}

function relieveSoon(budget: MemoryBudget): void {
  budget.relieve();
}

/**
 * The broker-wide memory budget for ready messages held in queues. Every pageable queue
 * charges its in-memory ready messages here (an integer add per message); when the total
 * goes over the limit, one relief runs after the current I/O (setImmediate): the biggest
 * backlogs page first, down to 90% of the limit, in large sequential chunks. Nothing is
 * latched: a queue pages only while it holds memory others need, and reads its chunks back
 * as its consumers reach them.
 */
export class MemoryBudget {
  used = 0;
  /** reliefs run and bytes they freed (statistics) */
  reliefs = 0;
  freed = 0;
  private readonly queues = new Set<Pageable>();
  private readonly overWindow = new Set<Pageable>();
  private scheduled = false;

  constructor(readonly limit: number) {}

  register(q: Pageable): void {
    this.queues.add(q);
  }

  unregister(q: Pageable): void {
    this.queues.delete(q);
    this.overWindow.delete(q);
  }

  /** the total went over the limit (hot path: called by the queue that crossed it) */
  over(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(relieveSoon, this);
  }

  /** a queue holds more messages in memory than its own window allows */
  windowExceeded(q: Pageable): void {
    this.overWindow.add(q);
    this.over();
  }

  relieve(): void {
    this.scheduled = false;
    this.reliefs++;
    for (const q of this.overWindow) this.pageOut(q, 0, q.overWindow);
    this.overWindow.clear();
    if (this.used <= this.limit) return;
    const target = this.used - this.limit * LOW_WATER;
    const biggest = [...this.queues].filter((q) => q.memoryCost > 0).sort((a, b) => b.memoryCost - a.memoryCost);
    let freed = 0;
    for (const q of biggest) {
      freed += this.pageOut(q, target - freed, 0);
      if (freed >= target) break;
    }
  }

  private pageOut(q: Pageable, bytes: number, entries: number): number {
    try {
      const freed = q.pageOut(bytes, entries);
      this.freed += freed;
      return freed;
    } catch (err) {
      q.pagingFailed(err);
      return 0;
    }
  }
}
