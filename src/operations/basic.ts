import { AmqpChannelError, AmqpConnectionError } from '../protocol/errors.js';
import type { FieldTable } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';
import { Consumer, type ConsumerOwner } from '../queue/consumer.js';
import type { Queue } from '../queue/queue.js';
import { parseConsumerPriority } from '../queue/queue-arguments.js';
import { checkConsumerArguments } from '../queue/queue-type.js';
import { Completion } from './completion.js';
import { checkResource } from './permissions.js';
import { usableQueue } from './queues.js';
import type { Session } from './session.js';

export interface ConsumeRequest {
  readonly queue: string;
  /** already chosen by the caller (generated when the client sent '') */
  readonly consumerTag: string;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  readonly arguments: FieldTable;
  /** prefetch in force for this consumer (basic.qos global=false); 0 = unlimited */
  readonly prefetchCount: number;
  /** the channel's shared prefetch (basic.qos global=true), 0 = none: quorum queues refuse a consumer under one */
  readonly channelPrefetch?: number;
  readonly owner: ConsumerOwner;
}

/** basic.consume: read on the queue; the consumer is attached (deliveries start in a later pass). */
export function consume(s: Session, r: ConsumeRequest): Consumer {
  checkResource(s, 'queue', r.queue, 'read');
  const q = usableQueue(s, r.queue);
  const desc = s.vhost.describeQueue(q.name);
  // RabbitMQ's order: the consumer arguments, then the queue type's own refusals, then exclusivity
  const priority = parseConsumerPriority(r.arguments, desc);
  checkConsumerArguments(q.limits.queueType, r.arguments, desc);
  if (q.limits.queueType === 'quorum' && (r.channelPrefetch ?? 0) !== 0) {
    // rabbit_quorum_queue:consume refuses a channel with a global prefetch; rabbit_channel makes it a connection error
    throw new AmqpConnectionError(ReplyCode.NotImplemented, `${desc} does not support global qos`, 60, 20);
  }
  // rabbit_amqqueue_process: a classic single-active-consumer queue takes no exclusive consumer
  const exclusiveRefused = r.exclusive && (q.consumerCount > 0 || (q.limits.singleActiveConsumer && q.limits.queueType === 'classic'));
  if (q.hasExclusiveConsumer() || exclusiveRefused) {
    throw new AmqpChannelError(ReplyCode.AccessRefused, `${desc} in exclusive use`);
  }
  const consumer = new Consumer(r.consumerTag, q, r.owner, r.noAck, r.exclusive, r.prefetchCount, r.arguments, priority);
  q.addConsumer(consumer);
  return consumer;
}

/** basic.cancel (or the consumer's channel closing): an auto-delete queue may go with its last consumer. */
export function cancel(consumer: Consumer): void {
  consumer.queue.removeConsumer(consumer);
}

/**
 * basic.get: read on the queue. Settles with the queue once its next message (if any) is
 * in memory; the caller then takes it with queue.shift() in the same tick.
 */
export function get(s: Session, queueName: string): Completion<Queue> {
  checkResource(s, 'queue', queueName, 'read');
  const q = usableQueue(s, queueName);
  // the queue's next messages are still in the store: settle once they are read in
  if (q.hasPagedOnly) return Completion.after(q.pageIn(), () => q);
  return Completion.done(q);
}
