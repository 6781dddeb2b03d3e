import { Message } from '../message/message.js';
import type { FieldTable } from '../protocol/field-types.js';
import { encodeBasicProperties } from '../protocol/generated/properties.js';
import type { QueueEntry } from './queue-entry.js';
import type { QueueLimits } from './queue-arguments.js';

/**
 * What a quorum queue does differently from a classic one, as far as one node can honour it
 * (RabbitMQ 3.10's rabbit_fifo and rabbit_fifo_client). Replication and leader election are
 * not Warren's: a quorum queue is a durable queue on this node.
 *
 * - Every message is kept on disk, whatever its delivery mode (a quorum queue's log holds them
 *   all), so every publish to one is confirmed after the store's commit and survives a restart.
 * - Each return of a delivery to the queue (basic.reject/nack with requeue, basic.recover, the
 *   channel or connection closing with it unacked) counts in the message's delivery count. A
 *   delivery of a message returned before carries it as the `x-delivery-count` header (and
 *   redelivered=true); basic.get always carries it (0 for a first delivery).
 * - With x-delivery-limit N, a message returned for the (N+1)th time is dead-lettered with
 *   reason `delivery_limit` (or dropped, without a dead-letter exchange) instead of requeued.
 */
export function keepsEveryMessage(limits: QueueLimits): boolean {
  return limits.queueType === 'quorum';
}

/**
 * A delivery came back to the queue: counts it, and says whether the message is past its
 * delivery limit (then it leaves the queue instead of being requeued).
 */
export function countReturn(entry: QueueEntry, limits: QueueLimits): boolean {
  if (limits.queueType !== 'quorum') return false;
  const count = (entry.deliveryCount ?? 0) + 1;
  entry.deliveryCount = count;
  return limits.deliveryLimit !== undefined && count > limits.deliveryLimit;
}

/** The message a quorum queue hands out: with x-delivery-count once returned (always for basic.get). */
export function deliveredMessage(entry: QueueEntry, get: boolean): Message {
  const count = entry.deliveryCount ?? 0;
  if (count === 0 && !get) return entry.message;
  const m = entry.message;
  const props = { ...m.properties() };
  const headers: FieldTable = new Map(props.headers ?? []);
  // rabbit_basic:add_header(<<"x-delivery-count">>, long, Count, Msg)
  headers.set('x-delivery-count', { type: 'I', value: count });
  props.headers = headers;
  return new Message(m.exchange, m.routingKey, encodeBasicProperties(props), m.body);
}
