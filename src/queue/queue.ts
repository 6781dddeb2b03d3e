import { Message } from '../message/message.js';
import { PropertyFlag } from '../message/properties-view.js';
import type { FieldTable } from '../protocol/field-types.js';
import type { QueueIndexSummary, StoredEntry } from '../store/store.js';
import type { Consumer } from './consumer.js';
import type { DeathReason } from './dead-letter.js';
import type { DurableStorage } from './durable-storage.js';
import { parseQueueArguments, type QueueLimits } from './queue-arguments.js';
import { countReturn, deliveredMessage, keepsEveryMessage } from './quorum.js';
import { nextActiveConsumer } from './single-active-consumer.js';
import type { QueueEntry } from './queue-entry.js';
import { PriorityReadyList, ReadyList, type ReadyQueue } from './ready-list.js';
import { QueueCounters } from '../stats/counters.js';

/** Deliveries made in one pass before yielding the event loop (fairness between queues). */
const DELIVERY_BATCH = 256;
/** Store reads when paging a backlog back in. */
const PAGE_IN_BATCH = 1024;
/** Bodies a queue keeps in memory at most, whatever its entry window. */
const MEMORY_WINDOW_BYTES = 128 * 1024 * 1024;

export interface QueueOptions {
  readonly durable: boolean;
  readonly autoDelete: boolean;
  /** the connection that owns an exclusive queue; null for shared queues */
  readonly exclusiveOwner: object | null;
  readonly arguments: FieldTable;
}

/** What a queue tells its vhost. */
export interface QueueHost {
  /** auto-delete (last consumer gone) or x-expires (unused for the period): delete the queue */
  queueUnused(queue: Queue): void;
  /** a store read failed; logged by the host */
  queueStoreError(queue: Queue, err: unknown): void;
  /** a timer or deferred callback of the queue threw (`during` names it); logged by the host, the queue carries on */
  queueCallbackFailed(queue: Queue, err: unknown, during: string): void;
  /** a message leaves the queue for its dead-letter exchange (only called when one is configured) */
  deadLetter(queue: Queue, message: Message, reason: DeathReason): void;
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

/** Index key order: higher priority first, then seq. */
function keyBefore(p1: number, s1: number, p2: number, s2: number): boolean {
  return p1 > p2 || (p1 === p2 && s1 < s2);
}

// Timer and setImmediate callbacks: an exception must never escape to the event loop
// (it would take the whole broker down); the host logs it and the queue carries on.
function expireTimerFired(q: Queue): void {
  try {
    q.onExpireTimer();
  } catch (err) {
    q.callbackFailed(err, 'message TTL timer');
  }
}
function unusedTimerFired(q: Queue): void {
  try {
    q.onUnusedTimer();
  } catch (err) {
    q.callbackFailed(err, 'x-expires timer');
  }
}

/**
 * A queue: ready entries in (priority, seq) order and the consumers that drain them
 * round-robin within their credit. Deliveries run in passes scheduled with
 * setImmediate, at most one pending pass per queue, so a burst of publishes costs one
 * pass, not one per message.
 *
 * A queue with a store (durable, or paging) writes persistent messages there (when it is
 * durable) and keeps at most `storage.memoryWindow` ready entries (and 128 MiB of bodies)
 * in memory; later entries live only in the store
 * ("paged") and all sort after every in-memory entry, so reading the store forward from
 * the last key ever held in memory yields them in order.
 */
export class Queue {
  readonly kind = 'queue' as const;
  readonly ready: ReadyQueue;
  readonly consumers: Consumer[] = [];
  /** delivered and not yet acked, over all channels */
  unackedCount = 0;
  deleted = false;
  /** what the arguments (and policies) ask of the queue; replaced when a policy changes */
  limits: QueueLimits;
  /** message statistics (read by the stats tick) */
  readonly stats = new QueueCounters();

  /** ready entries only in the store */
  private pagedCount = 0;
  private pagedBytes = 0;
  /** last (priority, seq) key ever held in memory: paged entries all sort after it */
  private maxMemoryPriority = 255;
  private maxMemorySeq = 0;
  private pageInFlight = false;

  private nextSeq = 1;
  private rrIndex = 0;
  private passScheduled = false;
  /** x-single-active-consumer: the consumer served (single-active-consumer.ts) */
  private activeConsumer: Consumer | undefined;
  private hadConsumer = false;
  private readonly runPass: () => void;
  /** head-of-queue expiry (one timer per queue, armed for the head's expiry) */
  private expireTimer: NodeJS.Timeout | null = null;
  private expireTimerAt = 0;
  /** x-expires: deletes the queue when unused for the period */
  private unusedTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly name: string,
    readonly options: QueueOptions,
    private readonly host: QueueHost,
    limits?: QueueLimits,
    /** store-wide id: durable queues, and others whose backlog may be paged to the store (0 = never stored) */
    readonly id = 0,
    /** the store, for durable queues and for paging; null keeps everything in memory */
    private readonly storage: DurableStorage | null = null,
  ) {
    this.runPass = () => {
      const ready = this.ready.length;
      try {
        this.deliveryPass();
      } catch (err) {
        this.callbackFailed(err, 'delivery pass');
        // the entry it failed on has left the ready list: the others may still go out (a
        // pass that failed before taking any entry is not retried: it would only fail again)
        if (this.ready.length < ready && this.consumers.length !== 0) this.scheduleDelivery();
      }
    };
    this.limits = limits ?? parseQueueArguments(options.arguments, `queue '${name}'`);
    this.ready = this.limits.maxPriority > 0 ? new PriorityReadyList(this.limits.maxPriority) : new ReadyList();
    this.touch();
  }

  get durable(): boolean {
    return this.options.durable;
  }
  /** persistent messages survive restarts here: a durable, shared queue (exclusive ones die with their connection) */
  get storesPersistent(): boolean {
    return this.options.durable && this.options.exclusiveOwner === null;
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
  /** ready messages (and their body bytes) that are only in the store right now */
  get pagedOutCount(): number {
    return this.pagedCount;
  }
  get pagedOutBytes(): number {
    return this.pagedBytes;
  }
  private get hasDeadLetterExchange(): boolean {
    return this.limits.deadLetterExchange !== undefined;
  }

  // ---- enqueue ------------------------------------------------------------------------------

  /**
   * Appends a message (spec: FIFO per queue and priority). Refused under x-overflow
   * reject-publish at the limit (reject-publish-dlx also dead-letters it); drop-head
   * discards, or dead-letters, the oldest instead.
   */
  enqueue(message: Message): Enqueued {
    const limits = this.limits;
    const limited = limits.maxLength !== Infinity || limits.maxLengthBytes !== Infinity;
    if (limited && limits.overflow !== 'drop-head') {
      if (this.messageCount >= limits.maxLength || this.byteSize + message.bodySize > limits.maxLengthBytes) {
        if (limits.overflow === 'reject-publish-dlx' && this.hasDeadLetterExchange) {
          this.host.deadLetter(this, message, 'maxlen');
        }
        return Enqueued.Rejected;
      }
    }
    this.stats.publish++;
    const expiresAt = this.expiryOf(message);
    if (expiresAt < 0) {
      // expiration 0: deliver now or expire (RabbitMQ: only if a consumer can take it at once)
      if (!this.hasConsumerWithCredit()) {
        if (this.hasDeadLetterExchange) this.host.deadLetter(this, message, 'expired');
        return Enqueued.Accepted;
      }
    }
    const priority = limits.maxPriority === 0 ? 0 : Math.min(message.priority, limits.maxPriority);
    const entry: QueueEntry = {
      seq: this.nextSeq++,
      message,
      priority,
      redelivered: false,
      expiresAt: expiresAt < 0 ? 0 : expiresAt,
      storeMessageId: 0,
      storeRefs: 0,
    };
    let result = Enqueued.Accepted;
    const storage = this.storage;
    if (storage !== null) {
      if (this.storesPersistent && (message.persistent || keepsEveryMessage(this.limits))) {
        if (message.persistent) {
          entry.storeMessageId = storage.persistShared(message);
          entry.storeRefs = message.durableRefs;
        } else {
          // a quorum queue keeps transient messages too (its own copy)
          entry.storeMessageId = storage.persistPrivate(message);
          entry.storeRefs = 1;
        }
        this.writeEntry(entry, false);
        message.uncommitted++;
        result = Enqueued.Stored;
      }
      let sortsInMemory = keyBefore(priority, entry.seq, this.maxMemoryPriority, this.maxMemorySeq);
      const windowFull = this.ready.length >= storage.memoryWindow || this.ready.byteSize >= MEMORY_WINDOW_BYTES;
      if (sortsInMemory && windowFull && this.canPageOutBefore(entry.seq)) {
        // a higher priority than the paged backlog, with the window full: make room by
        // paging out what sorts after it, so memory stays bounded (see pageOutAfter)
        this.pageOutAfter(priority, entry.seq);
        sortsInMemory = false;
      }
      if (!sortsInMemory && (this.pagedCount !== 0 || windowFull)) {
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
    // seq only grows, so a new entry is the last of its priority level
    this.ready.push(entry);
    if (!keyBefore(priority, entry.seq, this.maxMemoryPriority, this.maxMemorySeq) || this.maxMemorySeq === 0) {
      this.maxMemoryPriority = priority;
      this.maxMemorySeq = entry.seq;
    }
    if (limited) {
      // RabbitMQ hands a message straight to a waiting consumer, so it never counts
      // against the limit: deliver what consumers can take before trimming the head
      if (this.consumers.length !== 0) this.deliveryPass();
      this.dropHeadOverLimit();
    }
    if (entry.expiresAt !== 0) this.armExpireTimer();
    if (this.consumers.length !== 0) this.scheduleDelivery();
    return result;
  }

  /** Absolute expiry for a message entering this queue: 0 = never, -1 = "now or never" (TTL 0). */
  private expiryOf(message: Message): number {
    let ttl = this.limits.messageTtl;
    if (message.hasProperty(PropertyFlag.Expiration)) {
      const e = Number(message.properties().expiration);
      if (Number.isFinite(e) && (ttl === undefined || e < ttl)) ttl = e;
    }
    if (ttl === undefined) return 0;
    if (ttl === 0) return -1;
    return Date.now() + ttl;
  }

  private writeEntry(entry: QueueEntry, transient: boolean, delivered = false, update = false): void {
    const store = this.storage!.store;
    (update ? store.updateEntry : store.putEntry).call(store, {
      queueId: this.id,
      priority: entry.priority,
      seq: entry.seq,
      messageId: entry.storeMessageId,
      refs: entry.storeRefs,
      redelivered: delivered,
      transient,
      expiresAt: entry.expiresAt,
    });
  }

  /**
   * A stored entry goes out to a consumer for the first time: record it, so that after
   * a restart it comes back with redelivered=true (and undelivered ones with false).
   */
  markDelivered(entry: QueueEntry): void {
    // only stored persistent entries survive a restart; a paged transient one needs no mark
    if (entry.storeMessageId === 0 || entry.redelivered || this.storage === null || !this.storesPersistent) return;
    if (!entry.message.persistent && !keepsEveryMessage(this.limits)) return;
    this.writeEntry(entry, false, true, true);
  }

  /** x-overflow drop-head: the oldest ready messages make room (dead-lettered as maxlen). */
  private dropHeadOverLimit(): void {
    const limits = this.limits;
    while (this.messageCount > limits.maxLength || this.byteSize > limits.maxLengthBytes) {
      const head = this.ready.shift();
      if (head === undefined) break; // the head is paged; it is trimmed once read back
      this.drop(head, 'maxlen');
    }
  }

  /** An entry leaves the queue without being acked: dead-lettered when configured, then discarded. */
  drop(entry: QueueEntry, reason: DeathReason): void {
    if (this.hasDeadLetterExchange && !this.deleted) this.host.deadLetter(this, entry.message, reason);
    this.discard(entry);
  }

  /** An entry leaves the queue for good (acked, rejected without requeue, dropped, purged). */
  discard(entry: QueueEntry): void {
    // a deleted queue's entries went with it: the store released them (Store.deleteQueue)
    if (entry.storeMessageId === 0 || this.storage === null || this.deleted) return;
    if (this.storage.store.deleteEntry(this.id, entry.priority, entry.seq, entry.storeMessageId, entry.storeRefs)) {
      // the entry never reached the disk: when that holds in every queue, confirm at once
      const m = entry.message;
      if (m.confirmTo !== null && --m.uncommitted === 0) {
        m.confirmTo.confirmEarly(m.confirmSeq);
        m.confirmTo = null;
      }
    }
  }

  // ---- dequeue ------------------------------------------------------------------------------

  /** basic.get: the head entry (expired ones are dropped first), or undefined. */
  shift(): QueueEntry | undefined {
    this.touch();
    this.expireHead(Date.now());
    const entry = this.ready.shift();
    if (this.pagedCount !== 0 && this.ready.length < this.pageInBelow) void this.pageIn();
    return entry;
  }

  /**
   * The first `count` ready messages in delivery order, left where they are: not dequeued,
   * not marked redelivered (the management API's message browser). Expired heads are not
   * shown. Messages paged out to the store are not read for this (see pagedOutCount).
   */
  browse(count: number): QueueEntry[] {
    const now = Date.now();
    return this.ready.peekFirst(count).filter((e) => e.expiresAt === 0 || e.expiresAt > now);
  }

  /** Entries come back to their original position, marked redelivered. */
  requeue(entry: QueueEntry): void {
    if (this.deleted) {
      this.discard(entry);
      return;
    }
    if (countReturn(entry, this.limits)) {
      // quorum queue: past x-delivery-limit the message leaves (dead-lettered as delivery_limit)
      this.drop(entry, 'delivery_limit');
      return;
    }
    entry.redelivered = true;
    this.ready.insertBySeq(entry);
    // the limit holds for requeued messages too: the head (often the requeued one) is dropped
    if (this.limits.overflow === 'drop-head' && (this.limits.maxLength !== Infinity || this.limits.maxLengthBytes !== Infinity)) {
      this.dropHeadOverLimit();
    }
    if (entry.expiresAt !== 0) this.armExpireTimer();
    if (this.consumers.length !== 0) this.scheduleDelivery();
  }

  /**
   * A policy changed what the queue runs with: the new TTL applies to messages enqueued from
   * now on, a new x-expires restarts its period, and a lower length limit trims the head at
   * once (drop-head). The priority levels never change (they shape the ready list).
   */
  applyLimits(limits: QueueLimits): void {
    const old = this.limits;
    this.limits = { ...limits, maxPriority: old.maxPriority, singleActiveConsumer: old.singleActiveConsumer };
    if (this.limits.expires !== old.expires) this.touch();
    if (this.limits.overflow === 'drop-head' && (this.limits.maxLength !== Infinity || this.limits.maxLengthBytes !== Infinity)) this.dropHeadOverLimit();
  }

  /** The message to hand out for `entry` (a quorum queue adds x-delivery-count). */
  deliveredMessage(entry: QueueEntry, get: boolean): Message {
    return this.limits.queueType === 'classic' ? entry.message : deliveredMessage(entry, get);
  }

  /** Drops every ready message; returns how many. */
  purge(): number {
    const n = this.messageCount;
    for (let e = this.ready.shift(); e !== undefined; e = this.ready.shift()) this.discard(e);
    if (this.pagedCount !== 0) {
      const upToSeq = this.nextSeq - 1;
      const after = { priority: this.maxMemoryPriority, seq: this.maxMemorySeq };
      this.pagedCount = 0;
      this.pagedBytes = 0;
      // later entries go to memory again, after everything purged
      this.maxMemoryPriority = 0;
      this.maxMemorySeq = upToSeq;
      void this.discardStored(after, upToSeq);
    }
    return n;
  }

  /**
   * Whether the boundary between memory and store may move back to just before a new
   * entry: only when nothing outside memory could sort after that point and still be in
   * the store without being counted as paged. Unacked deliveries (they return to memory
   * on requeue, and their store entries must not be read back in) and store reads or
   * purges in flight (they work from the current boundary) rule it out.
   */
  private canPageOutBefore(seq: number): boolean {
    return this.unackedCount === 0 && !this.pageInFlight && this.discardsInFlight === 0 && seq > 1;
  }

  /**
   * Pages out every ready entry that sorts after (priority, seq), which sorts before
   * everything paged, and moves the boundary to just before it: what is in memory then
   * sorts before the boundary and what is paged after it, in store (delivery) order.
   */
  private pageOutAfter(priority: number, seq: number): void {
    const storage = this.storage!;
    for (let e = this.ready.peekLast(); e !== undefined && keyBefore(priority, seq, e.priority, e.seq); e = this.ready.peekLast()) {
      this.ready.pop();
      if (e.storeMessageId === 0) {
        e.storeMessageId = storage.persistPrivate(e.message);
        e.storeRefs = 1;
        this.writeEntry(e, true, e.redelivered);
      }
      this.pagedCount++;
      this.pagedBytes += e.message.bodySize;
    }
    this.maxMemoryPriority = priority;
    this.maxMemorySeq = seq - 1;
  }

  private discardsInFlight = 0;

  /** Deletes the stored entries after `after` with seq <= upToSeq (a purge of paged entries). */
  private async discardStored(after: { priority: number; seq: number }, upToSeq: number): Promise<void> {
    const storage = this.storage!;
    this.discardsInFlight++;
    try {
      let from = after;
      for (;;) {
        const batch = await storage.store.readEntries(this.id, from, PAGE_IN_BATCH);
        if (batch.length === 0 || this.deleted) return;
        for (const e of batch) {
          from = e;
          if (e.seq > upToSeq) continue; // published after the purge
          storage.store.deleteEntry(this.id, e.priority, e.seq, e.messageId, e.refs);
        }
      }
    } catch (err) {
      this.host.queueStoreError(this, err);
    } finally {
      this.discardsInFlight--;
    }
  }

  /** Recovery: the queue's entries are in the store; page the first window in. */
  restore(summary: QueueIndexSummary): Promise<void> {
    this.pagedCount = summary.count;
    this.pagedBytes = summary.bytes;
    this.nextSeq = summary.lastSeq + 1;
    return this.pageIn();
  }

  /** Paging in starts when fewer ready entries than this are left in memory. */
  private get pageInBelow(): number {
    return Math.max(PAGE_IN_BATCH, this.storage === null ? 0 : this.storage.memoryWindow / 2);
  }

  /** Ready messages that are only in the store right now (basic.get waits for them). */
  get hasPagedOnly(): boolean {
    return this.ready.length === 0 && this.pagedCount !== 0;
  }

  /** Reads the next stored entries into memory (one read in flight at a time). */
  private pageInPromise: Promise<void> = Promise.resolve();

  pageIn(): Promise<void> {
    if (this.pageInFlight) return this.pageInPromise;
    if (this.pagedCount === 0 || this.storage === null || this.deleted) return Promise.resolve();
    this.pageInFlight = true;
    const after = this.maxMemorySeq === 0 ? null : { priority: this.maxMemoryPriority, seq: this.maxMemorySeq };
    this.pageInPromise = this.storage.store.readEntries(this.id, after, PAGE_IN_BATCH).then(
      (entries) => {
        try {
          this.pagedIn(entries);
        } catch (err) {
          this.pageInFlight = false;
          this.callbackFailed(err, 'page-in');
        }
      },
      (err: unknown) => {
        this.pageInFlight = false;
        this.host.queueStoreError(this, err);
      },
    );
    return this.pageInPromise;
  }

  private pagedIn(entries: StoredEntry[]): void {
    this.pageInFlight = false;
    if (this.deleted) return;
    let expiring = false;
    for (const stored of entries) {
      if (!keyBefore(this.maxMemoryPriority, this.maxMemorySeq, stored.priority, stored.seq) && this.maxMemorySeq !== 0) continue;
      const m = stored.message;
      const message = new Message(m.exchange, m.routingKey, m.rawProperties, m.body);
      message.storeId = stored.messageId;
      message.durableRefs = stored.refs;
      this.ready.push({
        seq: stored.seq,
        message,
        priority: stored.priority,
        redelivered: stored.redelivered,
        expiresAt: stored.expiresAt,
        storeMessageId: stored.messageId,
        storeRefs: stored.refs,
      });
      if (stored.expiresAt !== 0) expiring = true;
      this.maxMemoryPriority = stored.priority;
      this.maxMemorySeq = stored.seq;
      this.pagedCount--;
      this.pagedBytes -= message.bodySize;
    }
    if (entries.length === 0 || this.pagedCount < 0) {
      // the store holds fewer entries than we counted: trust the store
      this.pagedCount = 0;
      this.pagedBytes = 0;
    }
    if (this.limits.maxLength !== Infinity || this.limits.maxLengthBytes !== Infinity) this.dropHeadOverLimit();
    if (expiring) this.armExpireTimer();
    if (this.consumers.length !== 0) this.scheduleDelivery();
  }

  // ---- TTL ----------------------------------------------------------------------------------

  /** Drops expired entries at the head (spec ext: messages expire when they reach the head). */
  private expireHead(now: number): void {
    for (let head = this.ready.peek(); head !== undefined && head.expiresAt !== 0 && head.expiresAt <= now; head = this.ready.peek()) {
      this.ready.shift();
      this.drop(head, 'expired');
    }
  }

  private armExpireTimer(): void {
    const head = this.ready.peek();
    if (head === undefined || head.expiresAt === 0 || this.deleted) return;
    if (this.expireTimer !== null) {
      if (this.expireTimerAt <= head.expiresAt) return;
      clearTimeout(this.expireTimer);
    }
    this.expireTimerAt = head.expiresAt;
    this.expireTimer = setTimeout(expireTimerFired, Math.max(0, head.expiresAt - Date.now()), this);
    this.expireTimer.unref();
  }

  onExpireTimer(): void {
    this.expireTimer = null;
    if (this.deleted) return;
    try {
      this.expireHead(Date.now());
      // the head may have been the last entry in memory: read the paged ones in (they may be due too)
      if (this.pagedCount !== 0 && this.ready.length < this.pageInBelow) void this.pageIn();
    } finally {
      // an entry that failed to expire has left the queue: the next ones keep their timer
      this.armExpireTimer();
    }
  }

  /** A timer or deferred callback of this queue threw: the host logs it (never rethrown). */
  callbackFailed(err: unknown, during: string): void {
    try {
      this.host.queueCallbackFailed(this, err, during);
    } catch {
      // the host's logger failed too: nothing more can be done, but nothing may escape
    }
  }

  // ---- x-expires ----------------------------------------------------------------------------

  /** The queue was used (declared, got from, consumer added/removed): restart the x-expires period. */
  touch(): void {
    const expires = this.limits.expires;
    if (expires === undefined || this.deleted) return;
    if (this.unusedTimer !== null) clearTimeout(this.unusedTimer);
    this.unusedTimer = null;
    if (this.consumers.length !== 0) return;
    this.unusedTimer = setTimeout(unusedTimerFired, expires, this);
    this.unusedTimer.unref();
  }

  onUnusedTimer(): void {
    this.unusedTimer = null;
    if (!this.deleted && this.consumers.length === 0) this.host.queueUnused(this);
  }

  // ---- consumers ----------------------------------------------------------------------------

  addConsumer(consumer: Consumer): void {
    // kept in priority order (stable): round-robin runs within the highest tier that has credit
    let i = this.consumers.length;
    while (i > 0 && this.consumers[i - 1]!.priority < consumer.priority) i--;
    this.consumers.splice(i, 0, consumer);
    if (i <= this.rrIndex && this.rrIndex < this.consumers.length - 1) this.rrIndex++;
    this.hadConsumer = true;
    // single active consumer: the first one stays active, whatever the priority of later ones
    if (this.limits.singleActiveConsumer && this.activeConsumer === undefined) this.activeConsumer = consumer;
    this.touch();
    this.scheduleDelivery();
  }

  /** Removes a consumer; an auto-delete queue that loses its last consumer asks its host to delete it. */
  removeConsumer(consumer: Consumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i < 0) return;
    this.consumers.splice(i, 1);
    if (this.rrIndex > i) this.rrIndex--;
    // single active consumer: the next one takes over (single-active-consumer.ts)
    const handOver = this.limits.singleActiveConsumer && consumer === this.activeConsumer;
    if (handOver) this.activeConsumer = nextActiveConsumer(this.consumers, this.limits.queueType);
    if (this.consumers.length === 0 && this.hadConsumer && this.options.autoDelete && !this.deleted) {
      this.host.queueUnused(this);
      return;
    }
    this.touch();
    if (handOver) this.scheduleDelivery();
  }

  hasExclusiveConsumer(): boolean {
    for (const c of this.consumers) if (c.exclusive) return true;
    return false;
  }

  private hasConsumerWithCredit(): boolean {
    if (this.limits.singleActiveConsumer) {
      const c = this.activeConsumer;
      return c !== undefined && c.owner.canDeliver(c);
    }
    for (const c of this.consumers) if (c.owner.canDeliver(c)) return true;
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
    const now = Date.now();
    while (budget > 0 && this.ready.length !== 0 && consumers.length !== 0) {
      const consumer = this.nextConsumerWithCredit();
      if (consumer === undefined) break; // credit returns via scheduleDelivery()
      const entry = this.ready.shift()!;
      if (entry.expiresAt !== 0 && entry.expiresAt <= now) {
        // spec ext (TTL): an expired message is never delivered
        this.drop(entry, 'expired');
        continue;
      }
      if (consumer.noAck) {
        this.discard(entry);
      } else {
        this.markDelivered(entry);
        consumer.unacked++;
        this.unackedCount++;
      }
      consumer.owner.deliver(consumer, this, entry);
      budget--;
    }
    if (this.pagedCount !== 0 && this.ready.length < this.pageInBelow) void this.pageIn();
    if (budget === 0 && this.ready.length !== 0) this.scheduleDelivery();
  }

  /**
   * Round-robin from where the last pass stopped; undefined when nobody has credit.
   * With consumer priorities, a lower tier is served only when every consumer of the
   * higher tiers is out of credit (RabbitMQ's consumer priority semantics). With a
   * single active consumer, only the active one is served.
   */
  private nextConsumerWithCredit(): Consumer | undefined {
    const consumers = this.consumers;
    const n = consumers.length;
    if (this.limits.singleActiveConsumer) {
      const c = this.activeConsumer;
      return c !== undefined && c.owner.canDeliver(c) ? c : undefined;
    }
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
    // the store drops the queue's whole index and releases what its entries held
    for (let e = this.ready.shift(); e !== undefined; e = this.ready.shift());
    this.deleted = true;
    this.pagedCount = 0;
    this.pagedBytes = 0;
    if (this.expireTimer !== null) clearTimeout(this.expireTimer);
    if (this.unusedTimer !== null) clearTimeout(this.unusedTimer);
    const consumers = this.consumers.splice(0);
    for (const c of consumers) c.owner.consumerCancelled(c);
    return n;
  }
}
