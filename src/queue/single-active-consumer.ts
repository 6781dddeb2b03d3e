import type { Consumer } from './consumer.js';
import type { QueueType } from './queue-type.js';

/**
 * Single active consumer (x-single-active-consumer), with RabbitMQ 3.10's rule for consumer
 * priorities:
 * - the first consumer to register while none is active becomes the active one, and stays active
 *   until it is cancelled or its channel goes, whatever the priority of consumers that register
 *   after it (rabbit_amqqueue_process: basic_consume sets active_consumer only when there is none);
 * - then a classic queue activates the waiting consumer with the highest priority, the earliest
 *   registered among equals (rabbit_queue_consumers:get_consumer/1 takes the head of its
 *   priority queue); a quorum queue activates the earliest registered waiting consumer, priorities
 *   aside (rabbit_fifo:activate_next_consumer/2 walks its waiting list in order).
 *
 * `consumers` is the queue's list: by priority (highest first), registration order within a
 * priority, as Queue.addConsumer keeps it.
 */
export function nextActiveConsumer(consumers: readonly Consumer[], queueType: QueueType): Consumer | undefined {
  if (queueType === 'classic' || consumers.length === 0) return consumers[0];
  let earliest = consumers[0]!;
  for (const c of consumers) if (c.registration < earliest.registration) earliest = c;
  return earliest;
}
