import type { FieldTable } from '../protocol/field-types.js';
import type { Queue } from './queue.js';

/**
 * What a queue needs from the channel that owns a consumer. The queue never sees
 * sockets: it asks for credit and hands entries over.
 */
export interface ConsumerOwner {
  /** true when the channel, its connection and this consumer's prefetch allow one more delivery */
  canDeliver(consumer: Consumer): boolean;
  deliver(consumer: Consumer, queue: Queue, entry: import('./queue-entry.js').QueueEntry): void;
  /** the queue went away (deleted): spec consumer_cancel_notify → server basic.cancel */
  consumerCancelled(consumer: Consumer): void;
}

let nextRegistration = 1;

export class Consumer {
  /** order of creation: which of two consumers registered first (single active consumer) */
  readonly registration = nextRegistration++;
  /** deliveries not yet acked (only counted when !noAck) */
  unacked = 0;
  /** RabbitMQ consumer priority (x-priority argument): higher ones are served first while they have credit */
  readonly priority: number;

  constructor(
    readonly tag: string,
    readonly queue: Queue,
    readonly owner: ConsumerOwner,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    /** prefetch_count in force when the consumer was created (basic.qos global=false); 0 = unlimited */
    readonly prefetchCount: number,
    readonly args: FieldTable,
    priority = 0,
  ) {
    this.priority = priority;
  }
}
