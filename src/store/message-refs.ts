/**
 * The store's bookkeeping of message ids and shared bodies. A persistent message routed to
 * several durable queues is written once; each queue's index entry references it, and the
 * body is deleted with the last reference. Only messages referenced by more than one entry
 * (an entry's `refs` > 1 when it was published) need a counter: an unshared body goes with
 * its one entry.
 *
 * Counts are what is on disk (or queued to be written): recovery rebuilds them from the
 * index, entries of deleted queues included, so the background deletion of those entries
 * releases them the same way an ack does.
 */
export class MessageRefs {
  private nextMessageId = 1;
  private nextQueueId = 1;
  /** message id → entries still referencing it (shared messages only) */
  private readonly shared = new Map<number, number>();

  allocateMessageId(): number {
    return this.nextMessageId++;
  }

  allocateQueueId(): number {
    return this.nextQueueId++;
  }

  /** Recovery: ids must continue above everything seen in the store. */
  seen(maxMessageId: number, maxQueueId: number): void {
    if (maxMessageId >= this.nextMessageId) this.nextMessageId = maxMessageId + 1;
    if (maxQueueId >= this.nextQueueId) this.nextQueueId = maxQueueId + 1;
  }

  /** A new entry references `messageId` (refs: its entry's refs field). */
  take(messageId: number, refs: number): void {
    if (refs > 1) this.shared.set(messageId, (this.shared.get(messageId) ?? 0) + 1);
  }

  /** An entry referencing `messageId` is gone: true when that was the last one (delete the body). */
  release(messageId: number, refs: number): boolean {
    if (refs <= 1) return true;
    const left = (this.shared.get(messageId) ?? 1) - 1;
    if (left > 0) {
      this.shared.set(messageId, left);
      return false;
    }
    this.shared.delete(messageId);
    return true;
  }

  /** Recovery starts over from what the index holds. */
  resetShared(): void {
    this.shared.clear();
  }

  /** entries referencing a shared message (0 when unknown or unshared) */
  sharedCount(messageId: number): number {
    return this.shared.get(messageId) ?? 0;
  }
}
