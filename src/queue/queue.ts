import type { Message } from '../message/message.js';
import type { FieldTable } from '../protocol/field-types.js';
import type { Consumer } from './consumer.js';
import type { QueueEntry } from './queue-entry.js';
import { parseQueueArguments, type QueueLimits } from './queue-arguments.js';
import { ReadyList } from './ready-list.js';

/** Deliveries made in one pass before yielding the event loop (fairness between queues). */
const DELIVERY_BATCH = 256;

export interface QueueOptions {
  readonly durable: boolean;
  readonly autoDelete: boolean;
  /** the connection that owns an exclusive queue; null for shared queues */
  readonly exclusiveOwner: object | null;
  readonly arguments: FieldTable;
}

/** What a queue tells its vhost. */
export interface QueueHost {
  /** auto-delete: the last consumer went away */
  queueUnused(queue: Queue): void;
}

/**
 * A queue: ready entries in seq order and the consumers that drain them round-robin
 * within their credit. Deliveries run in passes scheduled with setImmediate, at most
 * one pending pass per queue, so a burst of publishes costs one pass, not one per message.
 */
export class Queue {
  readonly kind = 'queue' as const;
  readonly ready = new ReadyList();
  readonly consumers: Consumer[] = [];
  /** delivered and not yet acked, over all channels */
  unackedCount = 0;
  deleted = false;
  readonly limits: QueueLimits;

  private nextSeq = 1;
  private rrIndex = 0;
  private passScheduled = false;
  private hadConsumer = false;
  private readonly runPass: () => void;

  constructor(
    readonly name: string,
    readonly options: QueueOptions,
    private readonly host: QueueHost,
    limits?: QueueLimits,
  ) {
    this.runPass = () => this.deliveryPass();
    this.limits = limits ?? parseQueueArguments(options.arguments, `queue '${name}'`);
  }

  get durable(): boolean {
    return this.options.durable;
  }
  get exclusive(): boolean {
    return this.options.exclusiveOwner !== null;
  }
  get messageCount(): number {
    return this.ready.length;
  }
  get consumerCount(): number {
    return this.consumers.length;
  }

  /**
   * Appends a message. Returns false when the queue refused it (x-overflow
   * reject-publish at its length limit): the publisher gets basic.nack.
   */
  enqueue(message: Message): boolean {
    const limits = this.limits;
    if (limits.maxLength !== Infinity || limits.maxLengthBytes !== Infinity) {
      if (limits.overflow !== 'drop-head') {
        if (this.ready.length >= limits.maxLength || this.ready.byteSize + message.bodySize > limits.maxLengthBytes) {
          return false;
        }
      } else {
        this.ready.push({ seq: this.nextSeq++, message, redelivered: false });
        // drop-head: the oldest ready messages make room
        while (this.ready.length > limits.maxLength || this.ready.byteSize > limits.maxLengthBytes) this.ready.shift();
        if (this.consumers.length !== 0) this.scheduleDelivery();
        return true;
      }
    }
    this.ready.push({ seq: this.nextSeq++, message, redelivered: false });
    if (this.consumers.length !== 0) this.scheduleDelivery();
    return true;
  }

  /** basic.get: the head entry, or undefined. */
  shift(): QueueEntry | undefined {
    return this.ready.shift();
  }

  /** Entries come back to their original position, marked redelivered. */
  requeue(entry: QueueEntry): void {
    if (this.deleted) return;
    entry.redelivered = true;
    this.ready.insertBySeq(entry);
    if (this.consumers.length !== 0) this.scheduleDelivery();
  }

  purge(): number {
    const n = this.ready.length;
    this.ready.clear();
    return n;
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.hadConsumer = true;
    this.scheduleDelivery();
  }

  /** Removes a consumer; an auto-delete queue that loses its last consumer asks its host to delete it. */
  removeConsumer(consumer: Consumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i < 0) return;
    this.consumers.splice(i, 1);
    if (this.rrIndex > i) this.rrIndex--;
    if (this.consumers.length === 0 && this.hadConsumer && this.options.autoDelete && !this.deleted) {
      this.host.queueUnused(this);
    }
  }

  hasExclusiveConsumer(): boolean {
    for (const c of this.consumers) if (c.exclusive) return true;
    return false;
  }

  /** Called when credit may have appeared (ack, qos change, socket drain, new consumer). */
  scheduleDelivery(): void {
    if (this.passScheduled || this.deleted) return;
    this.passScheduled = true;
    setImmediate(this.runPass);
  }

  private deliveryPass(): void {
    this.passScheduled = false;
    if (this.deleted) return;
    let budget = DELIVERY_BATCH;
    const consumers = this.consumers;
    while (budget > 0 && this.ready.length !== 0 && consumers.length !== 0) {
      const consumer = this.nextConsumerWithCredit();
      if (consumer === undefined) return; // credit returns via scheduleDelivery()
      const entry = this.ready.shift()!;
      if (!consumer.noAck) {
        consumer.unacked++;
        this.unackedCount++;
      }
      consumer.owner.deliver(consumer, this, entry);
      budget--;
    }
    if (budget === 0 && this.ready.length !== 0) this.scheduleDelivery();
  }

  /** Round-robin from where the last pass stopped; undefined when nobody has credit. */
  private nextConsumerWithCredit(): Consumer | undefined {
    const consumers = this.consumers;
    const n = consumers.length;
    for (let tried = 0; tried < n; tried++) {
      if (this.rrIndex >= n) this.rrIndex = 0;
      const c = consumers[this.rrIndex++]!;
      if (c.owner.canDeliver(c)) return c;
    }
    return undefined;
  }

  /** An unacked delivery was settled (ack, reject, nack, or its channel closed). */
  settled(consumer: Consumer | null): void {
    this.unackedCount--;
    if (consumer !== null) consumer.unacked--;
  }

  /** Deletion: consumers are told (server basic.cancel) and the ready list dropped. Returns the message count. */
  markDeleted(): number {
    this.deleted = true;
    const n = this.ready.length;
    this.ready.clear();
    const consumers = this.consumers.splice(0);
    for (const c of consumers) c.owner.consumerCancelled(c);
    return n;
  }
}
