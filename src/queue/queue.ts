import { Message } from '../message/message.js';
import type { FieldTable } from '../protocol/field-types.js';
import type { QueueIndexSummary, StoredEntry } from '../store/store.js';
import type { Consumer } from './consumer.js';
import type { DurableStorage } from './durable-storage.js';
import { parseQueueArguments, type QueueLimits } from './queue-arguments.js';
import type { QueueEntry } from './queue-entry.js';
import { ReadyList } from './ready-list.js';

/** Deliveries made in one pass before yielding the event loop (fairness between queues). */
const DELIVERY_BATCH = 256;
/**
 * Ready entries a durable queue keeps in memory; the rest stay in the store and are
 * paged in as consumers drain the queue, so memory does not grow with the backlog
 * (RabbitMQ's classic queues keep a similar window).
 */
export const MEMORY_WINDOW = 2048;
const PAGE_IN_BATCH = MEMORY_WINDOW / 2;

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
  /** a store read failed; logged by the host */
  queueStoreError(queue: Queue, err: unknown): void;
}

/** Outcome of an enqueue, for publisher confirms. */
export const enum Enqueued {
  /** refused (x-overflow reject-publish at the limit): basic.nack */
  Rejected = 0,
  /** held in memory: confirm at once */
  Accepted = 1,
  /** written to the store: confirm once the store's batch is durable */
  Stored = 2,
}

/**
 * A queue: ready entries in seq order and the consumers that drain them round-robin
 * within their credit. Deliveries run in passes scheduled with setImmediate, at most
 * one pending pass per queue, so a burst of publishes costs one pass, not one per message.
 *
 * A durable queue (storage !== null) writes persistent messages to the store and keeps
 * at most MEMORY_WINDOW ready entries in memory; later entries live only in the store
 * ("paged") and all sort after every in-memory entry, so reading the store forward from
 * the highest seq ever held in memory yields them in order.
 */
export class Queue {
  readonly kind = 'queue' as const;
  readonly ready = new ReadyList();
  readonly consumers: Consumer[] = [];
  /** delivered and not yet acked, over all channels */
  unackedCount = 0;
  deleted = false;
  readonly limits: QueueLimits;

  /** ready entries only in the store */
  private pagedCount = 0;
  private pagedBytes = 0;
  /** highest seq that has ever been in memory: paged entries all lie above it */
  private maxMemorySeq = 0;
  private pageInFlight = false;
  /** entries recovered at startup may have been delivered before the restart */
  private recoveredRedelivered = false;

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
    /** store-wide id, for durable queues (0 otherwise) */
    readonly id = 0,
    private readonly storage: DurableStorage | null = null,
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
  /** ready messages, in memory and paged */
  get messageCount(): number {
    return this.ready.length + this.pagedCount;
  }
  get byteSize(): number {
    return this.ready.byteSize + this.pagedBytes;
  }
  get consumerCount(): number {
    return this.consumers.length;
  }

  /**
   * Appends a message (spec: FIFO per queue). Refused under x-overflow
   * reject-publish at the limit; drop-head discards the oldest instead.
   */
  enqueue(message: Message): Enqueued {
    const limits = this.limits;
    const limited = limits.maxLength !== Infinity || limits.maxLengthBytes !== Infinity;
    if (limited && limits.overflow !== 'drop-head') {
      if (this.messageCount >= limits.maxLength || this.byteSize + message.bodySize > limits.maxLengthBytes) {
        return Enqueued.Rejected;
      }
    }
    const entry: QueueEntry = { seq: this.nextSeq++, message, redelivered: false, storeMessageId: 0, storeRefs: 0 };
    let result = Enqueued.Accepted;
    const storage = this.storage;
    if (storage !== null) {
      if (message.persistent) {
        entry.storeMessageId = storage.persistShared(message);
        entry.storeRefs = message.durableRefs;
        this.writeEntry(entry, false);
        result = Enqueued.Stored;
      }
      if (this.pagedCount !== 0 || this.ready.length >= MEMORY_WINDOW) {
        // page out: the entry lives only in the store until consumers get near it
        if (entry.storeMessageId === 0) {
          entry.storeMessageId = storage.persistPrivate(message);
          entry.storeRefs = 1;
          this.writeEntry(entry, true);
        }
        this.pagedCount++;
        this.pagedBytes += message.bodySize;
        if (limited) this.dropHeadOverLimit();
        return result;
      }
    }
    this.ready.push(entry);
    this.maxMemorySeq = entry.seq;
    if (limited) this.dropHeadOverLimit();
    if (this.consumers.length !== 0) this.scheduleDelivery();
    return result;
  }

  private writeEntry(entry: QueueEntry, transient: boolean): void {
    this.storage!.store.putEntry({
      queueId: this.id,
      priority: 0,
      seq: entry.seq,
      messageId: entry.storeMessageId,
      refs: entry.storeRefs,
      redelivered: false,
      transient,
    });
  }

  /** x-overflow drop-head: the oldest ready messages make room. */
  private dropHeadOverLimit(): void {
    const limits = this.limits;
    while (this.messageCount > limits.maxLength || this.byteSize > limits.maxLengthBytes) {
      const head = this.ready.shift();
      if (head === undefined) break; // the head is paged; it is trimmed once read back
      this.discard(head);
    }
  }

  /** An entry leaves the queue for good (acked, rejected without requeue, dropped, purged). */
  discard(entry: QueueEntry): void {
    if (entry.storeMessageId === 0 || this.storage === null) return;
    // a deleted queue's index went with it; only the body reference is left to drop
    if (!this.deleted) this.storage.store.deleteEntry(this.id, 0, entry.seq);
    this.storage.release(entry.storeMessageId, entry.storeRefs);
  }

  /** basic.get: the head entry, or undefined. */
  shift(): QueueEntry | undefined {
    const entry = this.ready.shift();
    if (this.pagedCount !== 0 && this.ready.length < PAGE_IN_BATCH) this.pageIn();
    return entry;
  }

  /** Entries come back to their original position, marked redelivered. */
  requeue(entry: QueueEntry): void {
    if (this.deleted) {
      this.discard(entry);
      return;
    }
    entry.redelivered = true;
    this.ready.insertBySeq(entry);
    if (this.consumers.length !== 0) this.scheduleDelivery();
  }

  /** Drops every ready message; returns how many. */
  purge(): number {
    const n = this.messageCount;
    for (let e = this.ready.shift(); e !== undefined; e = this.ready.shift()) this.discard(e);
    if (this.pagedCount !== 0) {
      const upToSeq = this.nextSeq - 1;
      const afterSeq = this.maxMemorySeq;
      this.pagedCount = 0;
      this.pagedBytes = 0;
      // later entries go to memory again, above everything purged
      this.maxMemorySeq = upToSeq;
      void this.discardStored(afterSeq, upToSeq);
    }
    return n;
  }

  /** Deletes the stored entries with afterSeq < seq <= upToSeq (a purge of paged entries). */
  private async discardStored(afterSeq: number, upToSeq: number): Promise<void> {
    const storage = this.storage!;
    try {
      let after = afterSeq;
      for (;;) {
        await storage.store.flush();
        const batch = await storage.store.readEntries(this.id, { priority: 0, seq: after }, PAGE_IN_BATCH);
        let done = batch.length === 0;
        for (const e of batch) {
          if (e.seq > upToSeq) {
            done = true;
            break;
          }
          after = e.seq;
          storage.store.deleteEntry(this.id, 0, e.seq);
          storage.release(e.messageId, e.refs);
        }
        if (done || this.deleted) return;
      }
    } catch (err) {
      this.host.queueStoreError(this, err);
    }
  }

  /** Recovery: the queue's entries are in the store; page the first window in. */
  restore(summary: QueueIndexSummary): Promise<void> {
    this.pagedCount = summary.count;
    this.pagedBytes = summary.bytes;
    this.nextSeq = summary.lastSeq + 1;
    this.recoveredRedelivered = true;
    return this.pageIn();
  }

  /** Reads the next stored entries into memory (one read in flight at a time). */
  private pageIn(): Promise<void> {
    if (this.pageInFlight || this.pagedCount === 0 || this.storage === null || this.deleted) return Promise.resolve();
    this.pageInFlight = true;
    const store = this.storage.store;
    const after = { priority: 0, seq: this.maxMemorySeq };
    return store
      .flush()
      .then(() => store.readEntries(this.id, after, PAGE_IN_BATCH))
      .then(
        (entries) => this.pagedIn(entries),
        (err: unknown) => {
          this.pageInFlight = false;
          this.host.queueStoreError(this, err);
        },
      );
  }

  private pagedIn(entries: StoredEntry[]): void {
    this.pageInFlight = false;
    if (this.deleted) return;
    for (const stored of entries) {
      if (stored.seq <= this.maxMemorySeq) continue;
      const m = stored.message;
      const message = new Message(m.exchange, m.routingKey, m.rawProperties, m.body);
      message.storeId = stored.messageId;
      message.durableRefs = stored.refs;
      this.ready.push({
        seq: stored.seq,
        message,
        // spec allows redelivered=true for "may have been delivered": after a restart we cannot tell
        redelivered: stored.redelivered || this.recoveredRedelivered,
        storeMessageId: stored.messageId,
        storeRefs: stored.refs,
      });
      this.maxMemorySeq = stored.seq;
      this.pagedCount--;
      this.pagedBytes -= message.bodySize;
    }
    if (entries.length === 0 || this.pagedCount < 0) {
      // the store holds fewer entries than we counted: trust the store
      this.pagedCount = 0;
      this.pagedBytes = 0;
    }
    if (this.pagedCount === 0) this.recoveredRedelivered = false;
    if (this.limits.maxLength !== Infinity || this.limits.maxLengthBytes !== Infinity) this.dropHeadOverLimit();
    if (this.consumers.length !== 0) this.scheduleDelivery();
  }

  addConsumer(consumer: Consumer): void {
    // kept in priority order (stable): round-robin runs within the highest tier that has credit
    let i = this.consumers.length;
    while (i > 0 && this.consumers[i - 1]!.priority < consumer.priority) i--;
    this.consumers.splice(i, 0, consumer);
    if (i <= this.rrIndex && this.rrIndex < this.consumers.length - 1) this.rrIndex++;
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
      if (consumer === undefined) break; // credit returns via scheduleDelivery()
      const entry = this.ready.shift()!;
      if (consumer.noAck) {
        this.discard(entry);
      } else {
        consumer.unacked++;
        this.unackedCount++;
      }
      consumer.owner.deliver(consumer, this, entry);
      budget--;
    }
    if (this.pagedCount !== 0 && this.ready.length < PAGE_IN_BATCH) void this.pageIn();
    if (budget === 0 && this.ready.length !== 0) this.scheduleDelivery();
  }

  /**
   * Round-robin from where the last pass stopped; undefined when nobody has credit.
   * With consumer priorities, a lower tier is served only when every consumer of the
   * higher tiers is out of credit (RabbitMQ's consumer priority semantics).
   */
  private nextConsumerWithCredit(): Consumer | undefined {
    const consumers = this.consumers;
    const n = consumers.length;
    if (consumers[0]!.priority === consumers[n - 1]!.priority) {
      for (let tried = 0; tried < n; tried++) {
        if (this.rrIndex >= n) this.rrIndex = 0;
        const c = consumers[this.rrIndex++]!;
        if (c.owner.canDeliver(c)) return c;
      }
      return undefined;
    }
    let start = 0;
    while (start < n) {
      const prio = consumers[start]!.priority;
      let end = start;
      while (end < n && consumers[end]!.priority === prio) end++;
      const size = end - start;
      const offset = this.rrIndex >= start && this.rrIndex < end ? this.rrIndex - start : 0;
      for (let tried = 0; tried < size; tried++) {
        const i = start + ((offset + tried) % size);
        const c = consumers[i]!;
        if (c.owner.canDeliver(c)) {
          this.rrIndex = i + 1 < end ? i + 1 : start;
          return c;
        }
      }
      start = end;
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
    const n = this.messageCount;
    // the store drops the queue's whole index; bodies held only by this queue go with it
    for (let e = this.ready.shift(); e !== undefined; e = this.ready.shift()) {
      if (e.storeMessageId !== 0) this.storage?.release(e.storeMessageId, e.storeRefs);
    }
    this.deleted = true;
    this.pagedCount = 0;
    this.pagedBytes = 0;
    const consumers = this.consumers.splice(0);
    for (const c of consumers) c.owner.consumerCancelled(c);
    return n;
  }
}
