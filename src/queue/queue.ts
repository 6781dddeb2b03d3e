import { Message } from '../message/message.js';
import { PropertyFlag } from '../message/properties-view.js';
import type { FieldTable } from '../protocol/field-types.js';
import type { QueueIndexSummary, SpillEntry, StoredEntry } from '../store/store.js';
import { Backlog, type Lane, type PagedChunk } from './backlog.js';
import type { Consumer } from './consumer.js';
import type { DeathReason } from './dead-letter.js';
import { ENTRY_OVERHEAD, type Pageable } from './memory-budget.js';
import { parseQueueArguments, type QueueLimits } from './queue-arguments.js';
import { countReturn, deliveredMessage, keepsEveryMessage } from './quorum.js';
import { nextActiveConsumer } from './single-active-consumer.js';
import type { QueueEntry } from './queue-entry.js';
import type { QueueStorage } from './queue-storage.js';
import type { ReadyList } from './ready-list.js';
import { QueueCounters } from '../stats/counters.js';

/** Deliveries made in one pass before yielding the event loop (fairness between queues). */
const DELIVERY_BATCH = 256;
/**
 * Publisher credit (RabbitMQ's credit flow, per delivery pass): while a queue has consumers,
 * what its publishers add between two of its delivery passes is counted, in units of one per
 * message plus one per 4 KiB of body, whether queued or handed straight to a consumer; past
 * this many, a publisher's connection stops being read until the queue's next pass (scheduled
 * if need be: it runs within the same turn of the event loop), which grants the credit back.
 * A fast producer then gets as many turns of the event loop as the deliveries do, whatever
 * its socket gives per read, and a slow consumer still lets the backlog grow. A pass that
 * leaves messages behind grants less (PUBLISH_CREDIT_BEHIND plus what it delivered): with
 * 128 per turn against a consumer bound by its acks, the publisher's share of each turn
 * delayed those acks (16 B, prefetch 100, no lag limit: 30-36k deliveries/s against 56k with
 * the smaller credit, the publisher still at 230k/s+).
 */
export const PUBLISH_CREDIT = 128;
/**
 * The credit of a pass that left messages behind (its consumers could not take them all,
 * e.g. they wait for their acks): this much, plus what the pass delivered. A publisher then
 * adds about as much per turn as the consumers take, and a turn stays short enough for the
 * consumers' acks to come back quickly; the backlog still grows by this much per turn while
 * they take nothing (a consumer that is stuck never stops its publishers).
 */
export const PUBLISH_CREDIT_BEHIND = 16;

/** A publisher waiting for a queue's next delivery pass (flow control). */
export interface CreditWaiter {
  /** the queue's delivery pass ran: credit is back (called from the pass; nothing may escape) */
  creditGranted(queue: Queue): void;
}
/** Entries read back per store read, and kept in memory at the head of a paged lane. */
const PAGE_IN_BATCH = 1024;
/** A paged-out chunk holds at most this many entries... */
const CHUNK_ENTRIES = 2048;
/** ...and this many body bytes (past the first entry). */
const CHUNK_BYTES = 4 * 1024 * 1024;
const NO_ENTRIES: readonly StoredEntry[] = [];
const NO_SPILLED: readonly SpillEntry[] = [];
const NO_PROPERTIES = Buffer.alloc(0);

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
 * A durable queue writes persistent messages to the store. With paging on (a data dir),
 * the ready entries stay in memory while the broker is within its memory budget; when it
 * is not, the budget pages out the biggest backlogs, in chunks, between the entries
 * consumers get next and the newest ones (see Backlog): persistent entries of a durable
 * queue are already in the durable log (paging drops the in-memory copy), the others go to
 * the spill. Chunks are read back as consumers reach them; once the last is read, the
 * queue is all in memory again.
 */
export class Queue implements Pageable {
  readonly kind = 'queue' as const;
  readonly ready: Backlog;
  readonly consumers: Consumer[] = [];
  /** delivered and not yet acked, over all channels */
  unackedCount = 0;
  deleted = false;
  /** what the arguments (and policies) ask of the queue; replaced when a policy changes */
  limits: QueueLimits;
  /** message statistics (read by the stats tick) */
  readonly stats = new QueueCounters();

  /** a chunk is being read back (one at a time), for this lane */
  private pageInFlight = false;
  private pageInLane: Lane | null = null;
  private pageInPromise: Promise<void> = Promise.resolve();
  /** bumped when the ready entries are dropped (purge, delete): a read in flight is then stale */
  private generation = 0;
  /** stored entries delivered and not yet settled (a purge keeps them under the queue's new id) */
  private readonly deliveredStored = new Set<QueueEntry>();
  /** store-wide id naming the queue's index entries (changes when a purge starts it over) */
  private storeId: number;

  private nextSeq = 1;
  private rrIndex = 0;
  private passScheduled = false;
  /** x-single-active-consumer: the consumer served (single-active-consumer.ts) */
  private activeConsumer: Consumer | undefined;
  /** publisher credit used since the last delivery pass (see PUBLISH_CREDIT) */
  private intake = 0;
  /** the credit the last pass granted (see PUBLISH_CREDIT_BEHIND) */
  private creditLimit = PUBLISH_CREDIT;
  /** publishers held until the next pass */
  private creditWaiters: CreditWaiter[] = [];
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
    /** store-wide id of a durable queue's index entries (0 = never stored) */
    id = 0,
    /** the store and the paging settings; null keeps everything in memory */
    private readonly storage: QueueStorage | null = null,
  ) {
    this.storeId = id;
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
    const pages = storage !== null && storage.paging;
    this.ready = new Backlog(this.limits.maxPriority, pages ? storage.budget : null);
    if (pages) storage.budget.register(this);
    this.touch();
  }

  /** store-wide id of the queue's index entries (0 = not stored) */
  get id(): number {
    return this.storeId;
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
    return this.ready.length + this.ready.pagedCount;
  }
  get byteSize(): number {
    return this.ready.byteSize + this.ready.pagedBytes;
  }
  get consumerCount(): number {
    return this.consumers.length;
  }
  /** ready messages (and their body bytes) that are only in the store right now */
  get pagedOutCount(): number {
    return this.ready.pagedCount;
  }
  get pagedOutBytes(): number {
    return this.ready.pagedBytes;
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
    if (storage !== null && this.storesPersistent && (message.persistent || keepsEveryMessage(this.limits))) {
      if (message.persistent) {
        // the body is written once, however many durable queues take it
        if (message.storeId === 0) message.storeId = storage.store.putMessage(message);
        entry.storeMessageId = message.storeId;
        entry.storeRefs = message.durableRefs;
      } else {
        // a quorum queue keeps transient messages too (its own copy)
        entry.storeMessageId = storage.store.putMessage(message);
        entry.storeRefs = 1;
      }
      this.writeEntry(entry, false, false);
      message.uncommitted++;
      result = Enqueued.Stored;
    }
    // seq only grows, so a new entry is the last of its priority level
    this.ready.push(entry);
    const credit = 1 + (message.bodySize >>> 12);
    // nothing else is waiting and a consumer can take it: it goes out now, without waiting
    // for a delivery pass (a request/reply round trip then costs no event-loop turn per hop).
    // A backlog still goes out in passes. The hand-out uses publisher credit all the same:
    // the consumer's client has yet to read it, and the kernel's socket buffers take
    // megabytes before the consumer's socket stops being writable, so without it a producer
    // that never waits fills them (deliveries far behind its publishes) and is never held.
    // Nothing schedules a pass for it: the credit comes back with the next pass, which a held
    // publisher schedules (waitForCredit).
    // A stored message too: its confirm came in with it (publish wires it before the first
    // enqueue), so a consumer that settles it at once (no-ack) cancels its store write and
    // confirms it without a commit.
    if (!limited && this.ready.length === 1 && this.ready.pagedCount === 0 && this.consumers.length !== 0 && this.handOutHead()) {
      this.intake += credit;
      return result;
    }
    if (storage !== null && storage.memoryWindow !== 0 && this.ready.length > storage.memoryWindow && storage.paging) {
      storage.budget.windowExceeded(this);
    }
    if (limited) {
      // RabbitMQ hands a message straight to a waiting consumer, so it never counts
      // against the limit: deliver what consumers can take before trimming the head
      if (this.consumers.length !== 0) this.deliveryPass();
      this.dropHeadOverLimit();
    }
    if (entry.expiresAt !== 0) this.armExpireTimer();
    if (this.consumers.length !== 0) {
      this.intake += credit;
      this.scheduleDelivery();
    }
    return result;
  }

  // ---- publisher credit ---------------------------------------------------------------------

  /** Publishers have used this queue's credit until its next delivery pass (see PUBLISH_CREDIT). */
  get creditExhausted(): boolean {
    return this.intake >= this.creditLimit;
  }

  /** `waiter` is told at the start of the queue's next delivery pass (scheduled if need be). */
  waitForCredit(waiter: CreditWaiter): void {
    this.creditWaiters.push(waiter);
    if (this.deleted) this.grantCredit();
    else this.scheduleDelivery();
  }

  /** A delivery pass starts (or the queue goes): the credit is back, held publishers may go on. */
  private grantCredit(): void {
    this.intake = 0;
    if (this.creditWaiters.length === 0) return;
    const waiters = this.creditWaiters;
    this.creditWaiters = [];
    for (const w of waiters) w.creditGranted(this);
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

  private writeEntry(entry: QueueEntry, delivered: boolean, update: boolean): void {
    const store = this.storage!.store;
    (update ? store.updateEntry : store.putEntry).call(store, {
      queueId: this.storeId,
      priority: entry.priority,
      seq: entry.seq,
      messageId: entry.storeMessageId,
      refs: entry.storeRefs,
      redelivered: delivered,
      transient: false,
      expiresAt: entry.expiresAt,
    });
  }

  /**
   * A stored entry goes out to a consumer for the first time: record it, so that after
   * a restart it comes back with redelivered=true (and undelivered ones with false).
   */
  markDelivered(entry: QueueEntry): void {
    // only stored entries (persistent, or any message of a quorum queue) survive a restart
    if (entry.storeMessageId === 0) return;
    this.deliveredStored.add(entry);
    if (!entry.redelivered) this.writeEntry(entry, true, true);
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
    this.deliveredStored.delete(entry);
    if (this.storage.store.deleteEntry(this.storeId, entry.priority, entry.seq, entry.storeMessageId, entry.storeRefs)) {
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
    if (this.ready.pagedCount !== 0) this.maybePageIn();
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
    if (entry.storeMessageId !== 0) this.deliveredStored.delete(entry);
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

  /**
   * Drops every ready message (in memory and paged); returns how many. A durable queue's
   * stored entries are the caller's: it starts the queue over under a new store id
   * (renumber) so that the old id's entries go in the background.
   */
  purge(): number {
    const n = this.messageCount;
    this.generation++;
    this.ready.clear();
    return n;
  }

  /**
   * A purged durable queue continues under `newId`: deliveries still awaiting their ack move
   * there (Store.moveEntry); everything else of the old id is the store's to delete.
   */
  renumber(newId: number): void {
    const store = this.storage!.store;
    const oldId = this.storeId;
    for (const e of this.deliveredStored) {
      e.storeRefs = store.moveEntry(oldId, {
        queueId: newId,
        priority: e.priority,
        seq: e.seq,
        messageId: e.storeMessageId,
        refs: e.storeRefs,
        redelivered: true,
        transient: false,
        expiresAt: e.expiresAt,
      });
    }
    this.storeId = newId;
  }

  // ---- paging -------------------------------------------------------------------------------

  /** Pageable: memory the in-memory ready messages are charged for */
  get memoryCost(): number {
    return this.ready.memoryCost;
  }

  /** Pageable: in-memory ready messages beyond the per-queue window */
  get overWindow(): number {
    const w = this.storage?.memoryWindow ?? 0;
    return w === 0 ? 0 : Math.max(0, this.ready.length - Math.max(1, Math.floor(w / 2)));
  }

  /**
   * Entries the lane consumers are served from keeps in memory ahead of its chunks, and
   * below which its next chunk is read: PAGE_IN_BATCH, within CHUNK_BYTES and an eighth of
   * the budget (big bodies), within half the per-queue window.
   */
  private keepInHead(lane: Lane): number {
    const storage = this.storage;
    if (storage === null) return PAGE_IN_BATCH;
    const w = storage.memoryWindow;
    let keep = w === 0 ? PAGE_IN_BATCH : Math.max(1, Math.min(PAGE_IN_BATCH, Math.floor(w / 2)));
    const head = lane.head;
    const average = head.length === 0 ? 0 : head.byteSize / head.length;
    if (average > 0) keep = Math.min(keep, Math.max(1, Math.floor(Math.min(CHUNK_BYTES, storage.budget.limit / 8) / (average + ENTRY_OVERHEAD))));
    return keep;
  }

  /** Pageable: a failure while paging out (the entries stay in memory) */
  pagingFailed(err: unknown): void {
    this.callbackFailed(err, 'paging out');
  }

  /**
   * Pageable: pages out until `bytes` of memory are freed or `entries` are paged, lowest
   * priority first, in chunks taken next to the paged part of each lane: the front of the
   * tail (appended after the last chunk), else the end of the head (before the first chunk),
   * keeping keepInHead entries for the consumers. Order never changes.
   */
  pageOut(bytes: number, entries: number): number {
    const storage = this.storage;
    if (storage === null || !storage.paging || this.deleted) return 0;
    const spillOk = storage.store.spill.writable;
    const lanes = this.ready.lanes;
    let top = lanes.length - 1;
    while (top > 0 && lanes[top]!.isEmpty) top--;
    let freed = 0;
    let paged = 0;
    for (const lane of lanes) {
      // consumers are served from the top lane next: it keeps entries in memory for them.
      // With chunks it pages only its tail: its head holds what was read back for consumers
      // (paging that out again would only read it in again)
      const keep = lane.priority === top ? this.keepInHead(lane) : 0;
      // (a lower lane's head waits behind the top lane: it may go, unless a read for it is in flight)
      const headEndOk = lane.chunks.length === 0 || (lane.priority !== top && this.pageInLane !== lane);
      while (freed < bytes || paged < entries) {
        const fromTail = lane.tail.length !== 0;
        if (!fromTail && !headEndOk) break;
        const list = fromTail ? lane.tail : lane.head;
        const available = list.length - (fromTail ? 0 : keep);
        if (available <= 0) break;
        const run = takeRun(list, fromTail, Math.min(available, CHUNK_ENTRIES), Math.min(CHUNK_BYTES, storage.budget.limit / 16), spillOk);
        if (run.length === 0) break;
        const chunk = this.makeChunk(lane, run);
        freed += this.ready.tookOut(run);
        this.ready.addChunk(lane, chunk, fromTail);
        paged += run.length;
        if (!spillOk && run.length < available) break; // stopped at a transient entry
      }
    }
    return freed;
  }

  /** Writes a run's transient entries to the spill (one chunk); durable ones are already in the log. */
  private makeChunk(lane: Lane, run: QueueEntry[]): PagedChunk {
    const store = this.storage!.store;
    let durable = 0;
    let bytes = 0;
    let spilled: SpillEntry[] | null = null;
    let deliveryCounts: Map<number, number> | null = null;
    for (const e of run) {
      bytes += e.message.bodySize;
      // a quorum queue's returns are counted in memory only: the chunk keeps them for page-in
      if (e.deliveryCount !== undefined && e.deliveryCount !== 0) (deliveryCounts ??= new Map()).set(e.seq, e.deliveryCount);
      if (e.storeMessageId !== 0) durable++;
      else (spilled ??= []).push({ seq: e.seq, redelivered: e.redelivered, expiresAt: e.expiresAt, message: e.message });
    }
    const spill = spilled === null ? null : (lane.stream ??= store.spill.openStream(`queue '${this.name}'`)).write(spilled);
    return { priority: lane.priority, firstSeq: run[0]!.seq, lastSeq: run[run.length - 1]!.seq, count: run.length, bytes, durable, spill, batchId: store.openBatchId, deliveryCounts };
  }

  /** Recovery: the queue's entries are in the store, one range per priority; the first are read in. */
  restore(summary: QueueIndexSummary): Promise<void> {
    const lanes = this.ready.lanes;
    for (const level of summary.levels) {
      const lane = lanes[Math.min(level.priority, lanes.length - 1)]!;
      const chunk: PagedChunk = {
        priority: level.priority,
        firstSeq: level.firstSeq,
        lastSeq: level.lastSeq,
        count: level.count,
        bytes: level.bytes,
        durable: level.count,
        spill: null,
        batchId: 0,
        deliveryCounts: null,
      };
      this.ready.addChunk(lane, chunk, true);
    }
    this.nextSeq = summary.lastSeq + 1;
    return this.pageIn();
  }

  /** Ready messages that are only in the store right now (basic.get waits for them). */
  get hasPagedOnly(): boolean {
    return this.ready.pagedCount !== 0 && this.ready.peek() === undefined;
  }

  /** Reads the next chunk when the lane consumers get to next runs low on entries in memory. */
  private maybePageIn(): void {
    if (this.pageInFlight) return;
    const lane = this.ready.nextPaged();
    if (lane !== null && lane.head.length < this.keepInHead(lane)) void this.pageIn();
  }

  /** Reads the next chunk of the lane consumers get to next into memory (one read in flight at a time). */
  pageIn(): Promise<void> {
    if (this.pageInFlight) return this.pageInPromise;
    const lane = this.ready.nextPaged();
    if (lane === null || this.storage === null || this.deleted) return Promise.resolve();
    this.pageInFlight = true;
    this.pageInLane = lane;
    const chunk = lane.chunks[0]!;
    const generation = this.generation;
    this.pageInPromise = this.readChunk(lane, chunk).then(
      ([durable, spilled]) => {
        this.pageInFlight = false;
        this.pageInLane = null;
        if (generation !== this.generation || this.deleted) return;
        try {
          this.pagedIn(lane, chunk, durable, spilled);
        } catch (err) {
          this.callbackFailed(err, 'page-in');
        }
      },
      (err: unknown) => {
        this.pageInFlight = false;
        this.pageInLane = null;
        this.host.queueStoreError(this, err);
      },
    );
    return this.pageInPromise;
  }

  /** The chunk's durable entries (a slice of a big recovered range) and its spilled ones. */
  private async readChunk(lane: Lane, chunk: PagedChunk): Promise<[readonly StoredEntry[], readonly SpillEntry[]]> {
    const store = this.storage!.store;
    while (chunk.durable > 0 && !store.isCommitted(chunk.batchId)) {
      await new Promise<void>((resolve) => store.afterCommit({ batchCommitted: () => resolve() }));
    }
    const queueId = this.storeId;
    const limit = chunk.spill === null ? Math.min(chunk.durable, PAGE_IN_BATCH) : chunk.durable;
    return Promise.all([
      chunk.durable > 0
        ? store.readEntries(queueId, { priority: chunk.priority, seq: chunk.firstSeq - 1 }, limit, { priority: chunk.priority, seq: chunk.lastSeq })
        : NO_ENTRIES,
      chunk.spill !== null && lane.stream !== null ? lane.stream.read(chunk.spill) : NO_SPILLED,
    ]);
  }

  private pagedIn(lane: Lane, chunk: PagedChunk, durable: readonly StoredEntry[], spilled: readonly SpillEntry[]): void {
    const partial = chunk.spill === null && durable.length < chunk.durable && durable.length !== 0;
    let expiring = false;
    let bytes = 0;
    // merge by seq: both lists are in seq order
    let i = 0;
    let j = 0;
    // messages of one publisher mostly carry the same properties: like the publish path, they
    // share one Buffer for them in memory (a view per message costs about 100 bytes)
    let props: Buffer = NO_PROPERTIES;
    while (i < durable.length || j < spilled.length) {
      let entry: QueueEntry;
      if (j >= spilled.length || (i < durable.length && durable[i]!.seq < spilled[j]!.seq)) {
        const d = durable[i++]!;
        const m = d.message;
        if (!m.rawProperties.equals(props)) props = m.rawProperties;
        const message = new Message(m.exchange, m.routingKey, props, m.body);
        message.storeId = d.messageId;
        message.durableRefs = d.refs;
        entry = { seq: d.seq, message, priority: lane.priority, redelivered: d.redelivered, expiresAt: d.expiresAt, storeMessageId: d.messageId, storeRefs: d.refs };
      } else {
        const t = spilled[j++]!;
        const m = t.message;
        if (!m.rawProperties.equals(props)) props = m.rawProperties;
        const message = new Message(m.exchange, m.routingKey, props, m.body);
        entry = { seq: t.seq, message, priority: lane.priority, redelivered: t.redelivered, expiresAt: t.expiresAt, storeMessageId: 0, storeRefs: 0 };
      }
      bytes += entry.message.bodySize;
      if (entry.expiresAt !== 0) expiring = true;
      const returned = chunk.deliveryCounts?.get(entry.seq);
      if (returned !== undefined) entry.deliveryCount = returned;
      this.ready.pagedIn(lane, entry);
    }
    if (partial) this.ready.chunkAdvanced(chunk, durable.length, bytes, durable[durable.length - 1]!.seq);
    else this.ready.chunkDone(lane, chunk); // whole, or the store held fewer entries than counted: trust the store
    if (this.limits.maxLength !== Infinity || this.limits.maxLengthBytes !== Infinity) this.dropHeadOverLimit();
    if (expiring) this.armExpireTimer();
    if (this.consumers.length !== 0) this.scheduleDelivery();
    else if (this.ready.peek() === undefined) this.maybePageIn();
  }

  // ---- TTL ----------------------------------------------------------------------------------

  /** Drops expired entries at the head (spec ext: messages expire when they reach the head). */
  private expireHead(now: number): void {
    let dropped = false;
    for (let head = this.ready.peek(); head !== undefined && head.expiresAt !== 0 && head.expiresAt <= now; head = this.ready.peek()) {
      this.ready.shift();
      this.drop(head, 'expired');
      dropped = true;
    }
    // the paged entries behind may have expired too: read them in (each chunk re-arms the timer)
    if (dropped && this.ready.pagedCount !== 0) this.maybePageIn();
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
      if (this.ready.pagedCount !== 0) this.maybePageIn();
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
    this.grantCredit();
    if (this.deleted) return;
    let budget = DELIVERY_BATCH;
    const consumers = this.consumers;
    const now = Date.now();
    // (peek: entries behind paged ones wait for them to be read back)
    while (budget > 0 && consumers.length !== 0 && this.ready.peek() !== undefined) {
      const consumer = this.nextConsumerWithCredit();
      if (consumer === undefined) break; // credit returns via scheduleDelivery()
      const entry = this.ready.shift()!;
      if (entry.expiresAt !== 0 && entry.expiresAt <= now) {
        // spec ext (TTL): an expired message is never delivered
        this.drop(entry, 'expired');
        continue;
      }
      this.handOut(consumer, entry);
      budget--;
    }
    if (this.ready.pagedCount !== 0) this.maybePageIn();
    const behind = this.ready.peek() !== undefined || this.ready.pagedCount !== 0;
    this.creditLimit = behind ? Math.min(PUBLISH_CREDIT, PUBLISH_CREDIT_BEHIND + DELIVERY_BATCH - budget) : PUBLISH_CREDIT;
    if (budget === 0 && this.ready.peek() !== undefined) this.scheduleDelivery();
  }

  /**
   * The head entry (just enqueued, not expired) to the next consumer with credit, if there is
   * one. A failure is the queue's, as in a pass: contained and logged, never the publisher's.
   */
  private handOutHead(): boolean {
    try {
      const consumer = this.nextConsumerWithCredit();
      if (consumer === undefined) return false;
      this.handOut(consumer, this.ready.shift()!);
    } catch (err) {
      this.callbackFailed(err, 'delivery pass');
      // (the entry it failed on has left the ready list, unless it failed before taking it)
      if (this.ready.length !== 0 && this.consumers.length !== 0) this.scheduleDelivery();
    }
    return true;
  }

  private handOut(consumer: Consumer, entry: QueueEntry): void {
    if (consumer.noAck) {
      this.discard(entry);
    } else {
      this.markDelivered(entry);
      consumer.unacked++;
      this.unackedCount++;
    }
    consumer.owner.deliver(consumer, this, entry);
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
    this.generation++;
    this.ready.clear();
    this.deliveredStored.clear();
    this.storage?.budget.unregister(this);
    this.deleted = true;
    if (this.expireTimer !== null) clearTimeout(this.expireTimer);
    if (this.unusedTimer !== null) clearTimeout(this.unusedTimer);
    const consumers = this.consumers.splice(0);
    for (const c of consumers) c.owner.consumerCancelled(c);
    this.grantCredit();
    return n;
  }
}

/**
 * Takes up to `max` entries from the front of `list` (the tail) or its end (the head), in
 * seq order, within `maxBytes` of bodies (past the first); without a writable spill only durable entries are taken
 * (stopping at the first transient one).
 */
function takeRun(list: ReadyList, fromFront: boolean, max: number, maxBytes: number, spillOk: boolean): QueueEntry[] {
  const run: QueueEntry[] = [];
  let bytes = 0;
  while (run.length < max) {
    const e = fromFront ? list.peek() : list.peekLast();
    if (e === undefined || (!spillOk && e.storeMessageId === 0)) break;
    if (run.length !== 0 && bytes + e.message.bodySize > maxBytes) break;
    if (fromFront) list.shift();
    else list.pop();
    run.push(e);
    bytes += e.message.bodySize;
  }
  if (!fromFront) run.reverse();
  return run;
}
