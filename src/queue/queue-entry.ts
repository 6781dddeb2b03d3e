import type { Message } from '../message/message.js';

/** A message's place in one queue. (priority desc, seq asc) orders the queue; requeue restores it. */
export interface QueueEntry {
  readonly seq: number;
  readonly message: Message;
  /** effective priority in this queue: min(message priority, x-max-priority); 0 in plain queues */
  readonly priority: number;
  redelivered: boolean;
  /** when the message expires in this queue (ms since the epoch); 0 = never */
  readonly expiresAt: number;
  /**
   * Id of the stored message this entry's index record points to; 0 when the entry
   * is not in the store (transient message in memory, or a non-durable queue).
   */
  storeMessageId: number;
  /** entries that referenced the stored message when it was written (body freed after the last) */
  storeRefs: number;
  /** quorum queues: how often the message came back to the queue (see quorum.ts); absent = 0 */
  deliveryCount?: number;
}
