/**
 * Message statistics: plain counters, incremented where the events happen (one field
 * increment, nothing allocated), and read on the stats tick (see stats/sampler.ts), which
 * turns them into RabbitMQ's `message_stats` (totals and `*_details.rate`).
 *
 * This module is a leaf: the model (queue, exchange) and the AMQP front end (channel,
 * connection) import it; it imports nothing.
 */

/** Rates the sampler keeps for one object: the previous reading and the rate per field. */
export interface RateState {
  /** counter values at the last tick, in the order of the object's FIELDS */
  readonly last: Float64Array;
  /** messages (or bytes) per second over the last tick, same order */
  readonly rate: Float64Array;
}

/** Counted per queue (RabbitMQ's queue message_stats). */
export class QueueCounters {
  /** messages that entered the queue (published, dead-lettered, due delayed) */
  publish = 0;
  /** deliveries to consumers that must ack */
  deliver = 0;
  deliverNoAck = 0;
  /** basic.get answered with a message, ack required / no-ack */
  get = 0;
  getNoAck = 0;
  getEmpty = 0;
  ack = 0;
  /** deliveries (or gets) of messages delivered before */
  redeliver = 0;
  rates: RateState | null = null;
  static readonly FIELDS = ['publish', 'deliver', 'deliverNoAck', 'get', 'getNoAck', 'getEmpty', 'ack', 'redeliver'] as const;
}

/** Counted per exchange. */
export class ExchangeCounters {
  /** messages published into the exchange */
  publishIn = 0;
  /** of those, the ones routed to at least one queue */
  publishOut = 0;
  rates: RateState | null = null;
  static readonly FIELDS = ['publishIn', 'publishOut'] as const;
}

/** Counted per channel; summed into per-vhost and broker-wide totals by the sampler. */
export class ChannelCounters {
  publish = 0;
  confirm = 0;
  returnUnroutable = 0;
  dropUnroutable = 0;
  deliver = 0;
  deliverNoAck = 0;
  get = 0;
  getNoAck = 0;
  getEmpty = 0;
  ack = 0;
  redeliver = 0;
  /** messages nacked or rejected without requeue / with requeue */
  reject = 0;
  /** publishes routed to at least one queue */
  routed = 0;
  /** publishes received in confirm mode */
  publishConfirm = 0;
  rates: RateState | null = null;
  static readonly FIELDS = [
    'publish', 'confirm', 'returnUnroutable', 'dropUnroutable', 'deliver', 'deliverNoAck', 'get', 'getNoAck',
    'getEmpty', 'ack', 'redeliver', 'reject', 'routed', 'publishConfirm',
  ] as const;
}

/** Counted per connection (socket traffic, RabbitMQ's recv_oct / recv_cnt; the send side is the Outbound's). */
export class ConnectionCounters {
  recvOct = 0;
  recvCnt = 0;
  rates: RateState | null = null;
}

export type QueueField = (typeof QueueCounters.FIELDS)[number];
export type ExchangeField = (typeof ExchangeCounters.FIELDS)[number];
export type ChannelField = (typeof ChannelCounters.FIELDS)[number];

/** Counted per vhost: queue churn (RabbitMQ's queue_declared / queue_created / queue_deleted). */
export class VhostCounters {
  queueDeclared = 0;
  queueCreated = 0;
  queueDeleted = 0;
}
