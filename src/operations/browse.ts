import type { QueueEntry } from '../queue/queue-entry.js';
import type { Queue } from '../queue/queue.js';
import { checkResource } from './permissions.js';
import { usableQueue } from './queues.js';
import type { Session } from './session.js';

/**
 * Looks at a queue's first messages without taking them (Warren's message browser):
 * read permission on the queue, as basic.get; the messages keep their place and their
 * redelivered flag, unlike RabbitMQ's get-and-requeue.
 */
export function browseQueue(s: Session, queueName: string, count: number): { queue: Queue; entries: QueueEntry[] } {
  checkResource(s, 'queue', queueName, 'read');
  const queue = usableQueue(s, queueName);
  return { queue, entries: queue.browse(count) };
}
